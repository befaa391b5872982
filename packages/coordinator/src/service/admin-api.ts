import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { CredfwdError, errorMessage, isCredfwdError, type ErrorCode, type Logger } from '@credfwd/shared';
import type { AdminCall } from './admin-call.ts';
import type { Governance } from './governance.ts';
import { createClusterRequestSchema, runRequestSchema, workerResultToJson, type CreateClusterRequest, type RunRequest, type WorkerResult } from '../core/index.ts';

/** `POST /v1/clusters/:id/revoke`: an empty body revokes the cluster's own sessions. */
const revokeRequestSchema = z.strictObject({ allSessions: z.boolean().optional() });

/** Largest request body the admin API reads. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** What the admin API does; the replica implements it. */
export interface AdminApiContext {
  /** Who may call, and what they may do. */
  governance: Governance;
  /** Named in `/healthz`, so an operator behind a load balancer sees which replica answered. */
  replicaId: string;
  logger: Logger;
  createCluster(call: AdminCall, request: CreateClusterRequest): Promise<unknown>;
  listClusters(call: AdminCall): Promise<unknown>;
  showCluster(call: AdminCall, clusterId: string): Promise<unknown>;
  runOnCluster(call: AdminCall, clusterId: string, request: RunRequest): Promise<WorkerResult[]>;
  /** Refreshes now; how a cluster resumes after `needs-attention`. */
  refreshCluster(call: AdminCall, clusterId: string): Promise<void>;
  deleteCluster(call: AdminCall, clusterId: string): Promise<void>;
  /** Deletes a role cluster and denies its sessions on the role. */
  revokeCluster(call: AdminCall, clusterId: string, allSessions: boolean): Promise<unknown>;
  /** Extends a cluster's lease by its length from now; answers the lease, null for a kept cluster. */
  renewLease(call: AdminCall, clusterId: string): Promise<unknown>;
  /** Records a request refused before it reached an operation (401). */
  refused(call: Omit<AdminCall, 'principal'>, code: ErrorCode): void;
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
  POLICY_DENIED: 403,
  SCOPE_UNSUPPORTED: 400,
  REVOKE_FAILED: 502,
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

function bearerOf(request: IncomingMessage): string {
  const header = request.headers.authorization ?? '';
  return header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
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
  // No body at all is undefined, for routes where one is optional.
  if (size === 0) return undefined;
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
 * (a bearer token naming a principal). Errors are `{code, message, hint}`;
 * 401 says no more than that the token was wrong. Every answer carries its
 * request id (`x-request-id`), which the audit log records.
 */
export function createAdminApi(context: AdminApiContext): (request: IncomingMessage, response: ServerResponse) => void {
  const route = async (request: IncomingMessage, response: ServerResponse, requestId: string): Promise<void> => {
    const path = new URL(request.url ?? '/', 'https://replica').pathname;
    const method = request.method ?? 'GET';
    if (path === '/healthz') {
      const ok = await context.redisReachable();
      return send(response, ok ? 200 : 503, { redis: ok ? 'ok' : 'unreachable', replica: context.replicaId });
    }
    if (path === '/metrics') return send(response, 200, await context.metrics(), 'text/plain; version=0.0.4');
    const match = /^\/v1\/clusters(?:\/([A-Za-z0-9._-]{1,128})(?:\/(run|refresh|lease|revoke))?)?\/?$/.exec(path);
    if (!match) throw new CredfwdError('NOT_FOUND', `no such route: ${method} ${path.slice(0, 100)}`, 'see the admin API reference in the README');
    const principal = await context.governance.authenticate(bearerOf(request));
    if (!principal) {
      context.logger.warn({ remote: request.socket.remoteAddress, method, path: path.slice(0, 100), requestId }, 'admin request refused: missing or wrong token');
      context.refused({ requestId }, 'ADMIN_AUTH_FAILED');
      throw new CredfwdError('ADMIN_AUTH_FAILED', 'missing or wrong admin token', 'send Authorization: Bearer <token>: CREDFWD_ADMIN_TOKEN, a token the policy lists, or an ID token of its issuer');
    }
    const call: AdminCall = { principal, requestId };
    const [, clusterId, action] = match;
    if (!clusterId) {
      if (method === 'GET') return send(response, 200, { clusters: await context.listClusters(call) });
      if (method !== 'POST') throw methodNotAllowed('GET or POST');
      const created = await context.createCluster(call, parse(createClusterRequestSchema, await readJson(request)));
      return send(response, 201, created);
    }
    if (action === 'refresh') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      await context.refreshCluster(call, clusterId);
      response.writeHead(202).end();
      return;
    }
    if (action === 'revoke') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      const body = parse(revokeRequestSchema, (await readJson(request)) ?? {});
      return send(response, 200, await context.revokeCluster(call, clusterId, body.allSessions ?? false));
    }
    if (action === 'lease') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      return send(response, 200, { lease: await context.renewLease(call, clusterId) });
    }
    if (action === 'run') {
      if (method !== 'POST') throw methodNotAllowed('POST');
      const body = parse(runRequestSchema, await readJson(request));
      return send(response, 200, { results: (await context.runOnCluster(call, clusterId, body)).map(workerResultToJson) });
    }
    if (method === 'GET') return send(response, 200, await context.showCluster(call, clusterId));
    if (method === 'DELETE') {
      await context.deleteCluster(call, clusterId);
      response.writeHead(204).end();
      return;
    }
    throw methodNotAllowed('GET or DELETE');
  };
  return (request, response) => {
    // The agent port's idle timeout bounds silent connections before a request; a run may take minutes to answer.
    // Receiving the request itself stays bounded by the server's requestTimeout.
    request.socket.setTimeout(0);
    const requestId = randomUUID();
    response.setHeader('x-request-id', requestId);
    route(request, response, requestId).catch((err: unknown) => {
      const error = isCredfwdError(err) ? err : new CredfwdError('INTERNAL', 'internal error', 'see the replica log');
      if (!isCredfwdError(err)) context.logger.error({ reason: errorMessage(err) }, 'admin request failed');
      if (response.headersSent) response.destroy();
      else send(response, STATUS[error.code] ?? (error.code === 'NOT_FOUND' ? 404 : 500), { code: error.code, message: error.message, hint: error.hint });
    });
  };
}
