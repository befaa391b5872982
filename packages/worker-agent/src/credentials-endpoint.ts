import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointOrigin, secretsEqual, type EndpointInfo, type EndpointListen, type Logger, type TokenBucketOptions } from '@credfwd/shared';
import type { Clock } from './clock.ts';
import type { StoredCredentials } from './credential-store.ts';
import { listenOnLoopback, replies, servedCredentials, type LoopbackServer } from './loopback-http.ts';
import { RefusalThrottle } from './refusal-throttle.ts';

/** The one path the endpoint serves credentials at. */
export const CREDENTIALS_PATH = '/credfwd/v1/credentials';
/** Where `credfwd-agent container-env` asks, with the token, for the container address's URL: `{"url": …}`, or 404 without one. */
export const CONTAINER_ENDPOINT_PATH = '/credfwd/v1/container-endpoint';

/** What a {@link CredentialsEndpoint} serves from. */
export interface CredentialsEndpointOptions {
  /** The credentials to serve, or undefined when none are usable (answered with 503). */
  credentials(): StoredCredentials | undefined;
  logger: Logger;
  /** Clock the advertised Expiration is reckoned on; the credentials' own clock. */
  clock?: Clock;
  /** Refusals (401, 404, 405) answered in full before further ones get 429; {@link DEFAULT_REFUSAL_LIMIT} by default. */
  refusalLimit?: TokenBucketOptions;
  /** `--endpoint-listen`: also serve, with the same token, at this address containers on the worker reach. */
  containerListen?: EndpointListen;
}

/** A running endpoint: where workloads find it, and how to stop it. */
export interface CredentialsEndpoint extends EndpointInfo {
  /** The credentials URL at the container address, with `containerListen`. */
  containerUrl?: string;
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
  const servers: LoopbackServer[] = [];
  const served: Served = { tokenFile, throttle, containerUrl: undefined };
  const handle = (req: IncomingMessage, res: ServerResponse): void => answer(req, res, served, options);
  try {
    // No trailing newline: botocore refuses a token with one as an illegal header value.
    await writeFile(tokenFile, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    servers.push(await listenOnLoopback(handle, options.logger, 'credentials endpoint'));
    const at = options.containerListen;
    if (at) {
      const server = await listenOnLoopback(handle, options.logger, 'credentials endpoint (containers)', at);
      servers.push(server);
      served.containerUrl = `${endpointOrigin(at.host, server.port)}${CREDENTIALS_PATH}`;
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${servers[0]!.port}${CREDENTIALS_PATH}`;
  const { containerUrl } = served;
  options.logger.info({ url, tokenFile, ...(containerUrl ? { containerUrl } : {}) }, 'credentials endpoint listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    tokenFile,
    ...(containerUrl ? { containerUrl } : {}),
    close: () => {
      closing ??= (async () => {
        await Promise.all(servers.map((s) => s.close()));
        throttle.close();
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/** What every request is answered from, once both servers are up. */
interface Served {
  tokenFile: string;
  throttle: RefusalThrottle;
  containerUrl: string | undefined;
}

function answer(req: IncomingMessage, res: ServerResponse, served: Served, options: CredentialsEndpointOptions): void {
  const { tokenFile, throttle } = served;
  const { path, send, refuse, json } = replies(req, res, throttle, options.logger, 'credentials endpoint');
  if (path !== CREDENTIALS_PATH && path !== CONTAINER_ENDPOINT_PATH) return refuse(404, 'not found');
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
  if (path === CONTAINER_ENDPOINT_PATH) {
    // Asked of the right token only: a 404 must not tell strangers whether containers are served.
    return served.containerUrl === undefined ? send(404, 'this agent serves no container address: start it with --endpoint-listen') : json({ url: served.containerUrl });
  }
  const held = options.credentials();
  if (!held) {
    // The right token asked: not a refusal to throttle, but worth a line (SDKs retry, so it stays rare).
    options.logger.warn({ status: 503, remote: req.socket.remoteAddress }, 'credentials endpoint has no unexpired credentials to serve');
    return send(503, 'no unexpired credentials on this worker');
  }
  json(servedCredentials(held, options.clock));
  options.logger.debug({ seq: held.seq, remote: req.socket.remoteAddress }, 'credentials served');
}

/** An empty token file never matches, whatever is sent. */
function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined || expected === '') return false;
  return secretsEqual(given, expected);
}
