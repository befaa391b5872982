import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { CredfwdError, isCredfwdError, type ErrorCode, type Logger } from '@credfwd/shared';
import { createClusterRequestSchema, runRequestSchema, workerResultToJson, type CreateClusterRequest, type RunRequest, type WorkerResult } from '../core/index.ts';

/** Largest request body the admin API reads. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** What the admin API does; the replica implements it. */
export interface AdminApiContext {
  adminToken: string;
  /** Named in `/healthz`, so an operator behind a load balancer sees which replica answered. */
  replicaId: string;
  logger: Logger;
  createCluster(request: CreateClusterRequest): Promise<unknown>;
  listClusters(): Promise<unknown>;
  showCluster(clusterId: string): Promise<unknown>;
  runOnCluster(clusterId: string, request: RunRequest): Promise<WorkerResult[]>;
  /** Refreshes now; how a cluster resumes after `needs-attention`. */
  refreshCluster(clusterId: string): Promise<void>;
  deleteCluster(clusterId: string): Promise<void>;
  /** Extends a cluster's lease by its length from now; answers the lease, null for a kept cluster. */
  renewLease(clusterId: string): Promise<unknown>;
  metrics(): Promise<string>;
  /** True when Redis answers. */
  redisReachable(): Promise<boolean>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  CONFIG_INVALID: 400,
  ENV_NAME_INVALID: 400,
  ENV_CONFLICT: 400,
  ENV_TOO_LARGE: 400,
  ADMIN_AUTH_FAILED: 401,
  CLUSTER_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TOO_LARGE: 413,
  REDIS_UNAVAILABLE: 503,
  LAUNCHER_NO_CREDENTIALS: 502,
  STS_ACCESS_DENIED: 502,
  STS_EXPIRED_TOKEN: 502,
  STS_INVALID_TOKEN: 502,
  STS_THROTTLED: 502,
  STS_REGION_DISABLED: 502,
  STS_FAILED: 502,
};

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Constant-time bearer check: digests have one length, so neither length nor content leaks through timing. */
function authorized(request: IncomingMessage, expected: Buffer): boolean {
  const header = request.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  return timingSafeEqual(digest(given), expected);
}

function send(response: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(text);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new CredfwdError('REQUEST_TOO_LARGE', `request body over ${MAX_ADMIN_BODY_BYTES} bytes`, 'send less');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new CredfwdError('USAGE', 'request body is not JSON', 'send a JSON object with content-type application/json');
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // Names the fields at fault, never their values: they may be secrets.
  const fields = [...new Set(result.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ');
  throw new CredfwdError('USAGE', `request body is malformed at: ${fields}`, 'see the admin API reference in the README');
}

function methodNotAllowed(allowed: string): CredfwdError {
  return new CredfwdError('METHOD_NOT_ALLOWED', 'method not allowed here', `use ${allowed}`);
}

/**
 * The replica's HTTPS routes besides the agent websocket: `/healthz` and
 * `/metrics` (no auth, no secrets) and the admin API under `/v1/clusters`
 * (bearer token). Errors are `{code, message, hint}`; 401 says no more than
 * that the token was wrong.
 */
export function createAdminApi(context: AdminApiContext): (request: IncomingMessage, response: ServerResponse) => void {
  const expected = digest(context.adminToken);
  const route = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'https://replica').pathname;
    const method = request.method ?? 'GET';
    if (path === '/healthz') {
      const ok = await context.redisReachable();
      return send(response, ok ? 200 : 503, { redis: ok ? 'ok' : 'unreachable', replica: context.replicaId });
    }
    if (path === '/metrics') return send(response, 200, await context.metrics(), 'text/plain; version=0.0.4');
    const match = /^\/v1\/clusters(?:\/([A-Za-z0-9._-]{1,128})(?:\/(run|refresh|lease))?)?\/?$/.exec(path);
    if (!match) throw new CredfwdError('NOT_FOUND', `no such route: ${method} ${path.slice(0, 100)}`, 'see the admin API reference in the README');
    if (!authorized(request, expected)) {
      context.logger.warn({ remote: request.socket.remoteAddress, method, path: path.slice(0, 100) }, 'admin request refused: missing or wrong token');
      throw new CredfwdError('ADMIN_AUTH_FAILED', 'missing or wrong admin token', 'send Authorization: Bearer <CREDFWD_ADMIN_TOKEN>');
    }
    const [, clusterId, action] = match;
    if (!clusterId) {
      if (method === 'GET') return send(response, 200, { clusters: await context.listClusters() });
      if (method !== 'POST') throw methodNotAllowed('GET or POST');
      const created = await context.createCluster(parse(createClusterRequestSchema, await readJson(request)));
      return send(response, 201, created);
    }
    if (action === 'refresh') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      await context.refreshCluster(clusterId);
      response.writeHead(202).end();
      return;
    }
    if (action === 'lease') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      return send(response, 200, { lease: await context.renewLease(clusterId) });
    }
    if (action === 'run') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      const body = parse(runRequestSchema, await readJson(request));
      return send(response, 200, { results: (await context.runOnCluster(clusterId, body)).map(workerResultToJson) });
    }
    if (method === 'GET') return send(response, 200, await context.showCluster(clusterId));
    if (method === 'DELETE') {
      await context.deleteCluster(clusterId);
      response.writeHead(204).end();
      return;
    }
    throw methodNotAllowed('GET or DELETE');
  };
  return (request, response) => {
    // The agent port's idle timeout bounds silent connections before a request; a run may take minutes to answer.
    // Receiving the request itself stays bounded by the server's requestTimeout.
    request.socket.setTimeout(0);
    route(request, response).catch((err: unknown) => {
      const error = isCredfwdError(err) ? err : new CredfwdError('INTERNAL', 'internal error', 'see the replica log');
      if (!isCredfwdError(err)) context.logger.error({ reason: err instanceof Error ? err.message : String(err) }, 'admin request failed');
      if (response.headersSent) response.destroy();
      else send(response, STATUS[error.code] ?? (error.code === 'NOT_FOUND' ? 404 : 500), { code: error.code, message: error.message, hint: error.hint });
    });
  };
}
