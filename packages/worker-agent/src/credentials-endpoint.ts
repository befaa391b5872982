import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EndpointInfo, Logger, TokenBucketOptions } from '@credfwd/shared';
import { advertisedExpiration } from './advertised-expiration.ts';
import { systemClock, type Clock } from './clock.ts';
import type { StoredCredentials } from './credential-store.ts';
import { RefusalThrottle } from './refusal-throttle.ts';

/** The one path the endpoint serves credentials at. */
export const CREDENTIALS_PATH = '/credfwd/v1/credentials';

/** What a {@link CredentialsEndpoint} serves from. */
export interface CredentialsEndpointOptions {
  /** The credentials to serve, or undefined when none are usable (answered with 503). */
  credentials(): StoredCredentials | undefined;
  logger: Logger;
  /** Clock the advertised Expiration is reckoned on; the credentials' own clock. */
  clock?: Clock;
  /** Refusals (401, 404, 405) answered in full before further ones get 429; {@link DEFAULT_REFUSAL_LIMIT} by default. */
  refusalLimit?: TokenBucketOptions;
}

/** A running endpoint: where workloads find it, and how to stop it. */
export interface CredentialsEndpoint extends EndpointInfo {
  /** Stops serving and deletes the token file and its directory; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a loopback HTTP server speaking the AWS container-credentials
 * protocol (AWS_CONTAINER_CREDENTIALS_FULL_URI with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), so SDK clients in workloads fetch
 * credentials themselves and pick up refreshed ones without a restart. The
 * token lives in a file only this user can read, in a fresh private directory.
 */
export async function createCredentialsEndpoint(options: CredentialsEndpointOptions): Promise<CredentialsEndpoint> {
  // mkdtemp creates the directory with mode 0700.
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-endpoint-'));
  const tokenFile = join(dir, 'token');
  const throttle = new RefusalThrottle(options.logger, options.refusalLimit);
  const server = createServer((req, res) => {
    answer(req, res, tokenFile, throttle, options).catch((err: unknown) => {
      options.logger.error({ err }, 'credentials endpoint failed to answer a request');
      res.destroy();
    });
  });
  try {
    // No trailing newline: botocore refuses a token with one as an illegal header value.
    await writeFile(tokenFile, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  } catch (err) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${CREDENTIALS_PATH}`;
  options.logger.info({ url, tokenFile }, 'credentials endpoint listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    tokenFile,
    close: () => {
      closing ??= (async () => {
        const closed = once(server, 'close');
        server.close();
        // Keep-alive connections of SDK clients would otherwise hold the server open.
        server.closeAllConnections();
        await closed;
        throttle.close();
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, tokenFile: string, throttle: RefusalThrottle, options: CredentialsEndpointOptions): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0] ?? '';
  const send = (status: number, message: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(`${message}\n`);
  };
  const refuse = (status: number, message: string, headers: Record<string, string> = {}): void => {
    if (!throttle.admit()) return send(429, 'too many refused requests', { 'retry-after': '1' });
    // Never the Authorization header or the token: only what identifies the request.
    options.logger.warn({ status, method: req.method, path: path.slice(0, 256), remote: req.socket.remoteAddress }, 'credentials endpoint refused a request');
    send(status, message, headers);
  };
  if (path !== CREDENTIALS_PATH) return refuse(404, 'not found');
  if (req.method !== 'GET') return refuse(405, 'method not allowed', { allow: 'GET' });
  let expected: string;
  try {
    // Re-read on every request, as the container-credentials spec requires: whoever owns the file may rotate the token.
    // Synchronously: the file is a few bytes in a local directory, and the promise API's four thread-pool round trips
    // (open, fstat, read, close) cost two thirds of the endpoint's CPU under load (pnpm bench).
    expected = readFileSync(tokenFile, 'utf8');
  } catch (err) {
    options.logger.error({ reason: (err as NodeJS.ErrnoException).code, tokenFile }, 'credentials endpoint cannot read its token file');
    return refuse(500, 'token file unreadable');
  }
  if (!sameToken(req.headers.authorization, expected)) return refuse(401, 'unauthorized');
  const held = options.credentials();
  if (!held) {
    // The right token asked: not a refusal to throttle, but worth a line (SDKs retry, so it stays rare).
    options.logger.warn({ status: 503, remote: req.socket.remoteAddress }, 'credentials endpoint has no unexpired credentials to serve');
    return send(503, 'no unexpired credentials on this worker');
  }
  const { value } = held;
  const body = {
    AccessKeyId: value.accessKeyId,
    SecretAccessKey: value.secretAccessKey,
    ...(value.sessionToken === undefined ? {} : { Token: value.sessionToken }),
    Expiration: isoSeconds(advertisedExpiration(held, (options.clock ?? systemClock).now())),
  };
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  options.logger.debug({ seq: held.seq, remote: req.socket.remoteAddress }, 'credentials served');
}

/** Compares in constant time; hashing first means neither length nor content leaks through timing. */
function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined || expected === '') return false;
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** ISO-8601 UTC to the second, as ECS and IMDS write Expiration; rounding down errs towards refreshing early. */
function isoSeconds(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
