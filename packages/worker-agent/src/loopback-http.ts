import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { utcIsoString, type Logger } from '@credfwd/shared';
import { advertisedExpiration } from './advertised-expiration.ts';
import { systemClock, type Clock } from './clock.ts';
import type { StoredCredentials } from './credential-store.ts';
import type { RefusalThrottle } from './refusal-throttle.ts';

// Required, not imported: an ES import of node:http reads all its exports, and on Node 22 the lazy
// WebSocket ones load undici: megabytes that every idle agent would carry (3 MiB, measured in the bundle).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

/** What the credentials endpoints (container and instance metadata) share: one HTTP server on loopback. */
export interface LoopbackServer {
  port: number;
  /** Stops listening and drops open connections; idempotent. */
  close(): Promise<void>;
}

/**
 * Serves `handle` on 127.0.0.1 at an ephemeral port, or at `at` (the
 * container address of `--endpoint-listen`); a handler that throws gets its
 * connection dropped and a log line.
 */
export async function listenOnLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void,
  logger: Logger,
  what: string,
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<LoopbackServer> {
  const server = createServer((req, res) => {
    Promise.resolve()
      .then(() => handle(req, res))
      .catch((err: unknown) => {
        logger.error({ err }, `${what} failed to answer a request`);
        res.destroy();
      });
  });
  server.listen(at.port, at.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    server.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      closing ??= (async () => {
        const closed = once(server, 'close');
        server.close();
        // Keep-alive connections of SDK clients would otherwise hold the server open.
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}

/** How a handler answers: `send` for answers, `refuse` for refusals, which are logged and throttled. */
export interface Replies {
  /** The request's path, without its query. */
  path: string;
  send(status: number, message: string, headers?: Record<string, string>): void;
  refuse(status: number, message: string, headers?: Record<string, string>): void;
  json(body: unknown): void;
  /** 200 with exactly `body`: instance metadata values carry no trailing newline, and a token with one is an illegal header value. */
  text(body: string, headers?: Record<string, string>): void;
}

export function replies(req: IncomingMessage, res: ServerResponse, throttle: RefusalThrottle, logger: Logger, what: string): Replies {
  const path = (req.url ?? '').split('?', 1)[0] ?? '';
  const send = (status: number, message: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(`${message}\n`);
  };
  return {
    path,
    send,
    refuse: (status, message, headers = {}) => {
      if (!throttle.admit()) return send(429, 'too many refused requests', { 'retry-after': '1' });
      // Never a header's value (tokens travel in them): only what identifies the request.
      logger.warn({ status, method: req.method, path: path.slice(0, 256), remote: req.socket.remoteAddress }, `${what} refused a request`);
      send(status, message, headers);
    },
    json: (body) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    },
    text: (body, headers = {}) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', ...headers }).end(body);
    },
  };
}

/** The credential fields both endpoints serve, with the Expiration that brings SDK clients back after each push. */
export interface ServedCredentials {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token?: string;
  Expiration: string;
}

export function servedCredentials(held: StoredCredentials, clock: Clock = systemClock): ServedCredentials {
  const { value } = held;
  return {
    AccessKeyId: value.accessKeyId,
    SecretAccessKey: value.secretAccessKey,
    ...(value.sessionToken === undefined ? {} : { Token: value.sessionToken }),
    Expiration: isoSeconds(advertisedExpiration(held, clock.now())),
  };
}

/** ISO-8601 UTC to the second, as ECS and IMDS write Expiration; rounding down errs towards refreshing early. */
export function isoSeconds(date: Date): string {
  return utcIsoString(new Date(Math.floor(date.getTime() / 1000) * 1000)).replace('.000Z', 'Z');
}
