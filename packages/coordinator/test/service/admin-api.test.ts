import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import anyTest, { type TestFn } from 'ava';
import { CredfwdError, createLogger, type ErrorCode } from '@credfwd/shared';
import { workerResult } from '../../src/core/worker-result.ts';
import { createAdminApi, MAX_ADMIN_BODY_BYTES, type AdminApiContext } from '../../src/service/admin-api.ts';
import { Governance } from '../../src/service/governance.ts';

const ADMIN_TOKEN = 'admin-token-0123456789-0123456789-abcdef';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

interface Context {
  base: string;
  /** Each operation the API reached, as `op:cluster:principal:requestId`, and each refusal. */
  calls: string[];
  /** What the next operation does instead of answering: throw this. */
  failWith: { error: Error | undefined };
  redisUp: { value: boolean };
  close(): void;
}
const test = anyTest as TestFn<Context>;

/**
 * The real admin API on a plain HTTP server on loopback, with real
 * governance (the break-glass token, no policy) and an in-memory context
 * that records which operation each request reached.
 */
test.beforeEach(async (t) => {
  const logger = createLogger({ name: 'test', level: 'silent' });
  const calls: string[] = [];
  const failWith: Context['failWith'] = { error: undefined };
  const redisUp = { value: true };
  const op = async <T>(name: string, call: { principal: { name: string }; requestId: string }, clusterId: string, answer: T): Promise<T> => {
    calls.push(`${name}:${clusterId}:${call.principal.name}:${call.requestId}`);
    if (failWith.error) throw failWith.error;
    return answer;
  };
  const context: AdminApiContext = {
    governance: new Governance({ adminToken: ADMIN_TOKEN, logger }),
    replicaId: 'r-test',
    logger,
    createCluster: (call, request) => op('create', call, '-', { id: 'c-new', echo: request }),
    listClusters: (call) => op('list', call, '-', [{ id: 'c1' }]),
    showCluster: (call, id) => op('show', call, id, { id }),
    runOnCluster: (call, id, request) => op('run', call, id, [workerResult('w1', 0, null, Buffer.from(request.argv.join(' ')), Buffer.alloc(0))]),
    refreshCluster: (call, id) => op('refresh', call, id, undefined),
    deleteCluster: (call, id) => op('delete', call, id, undefined),
    revokeCluster: (call, id, all) => op(`revoke(${all})`, call, id, { revoked: id }),
    renewLease: (call, id) => op('lease', call, id, { expiresAt: '2026-12-01T12:00:00.000Z' }),
    refused: (call, code) => { calls.push(`refused:${code}:${call.requestId}`); },
    metrics: async () => 'credfwd_clusters 1\n',
    redisReachable: async () => redisUp.value,
  };
  const server = createServer(createAdminApi(context));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const close = (): void => { server.closeAllConnections(); server.close(); };
  t.context = { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, failWith, redisUp, close };
});
test.afterEach.always((t) => t.context.close?.());

interface Answer { status: number; body: Record<string, unknown>; text: string; requestId: string | null; type: string | null }

async function call(t: { context: Context }, method: string, path: string, options: { token?: string | null; body?: string } = {}): Promise<Answer> {
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  const response = await fetch(`${t.context.base}${path}`, {
    method,
    headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: options.body,
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON: metrics, or an empty 202/204 */ }
  return { status: response.status, body, text, requestId: response.headers.get('x-request-id'), type: response.headers.get('content-type') };
}

/** Asserts an error answer: its status, its `{code, message, hint}` body and nothing else. */
function isError(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown) => void }, answer: Answer, status: number, code: ErrorCode): void {
  t.is(answer.status, status, answer.text);
  t.deepEqual(Object.keys(answer.body).sort(), ['code', 'hint', 'message']);
  t.is(answer.body.code, code);
}

test('each route reaches its operation with the caller\'s principal and the request id the answer carries', async (t) => {
  const routes: Array<[string, string, number, string]> = [
    ['GET', '/v1/clusters', 200, 'list:-'],
    ['GET', '/v1/clusters/', 200, 'list:-'],
    ['GET', '/v1/clusters/c1', 200, 'show:c1'],
    ['DELETE', '/v1/clusters/c1', 204, 'delete:c1'],
    ['POST', '/v1/clusters/c1/refresh', 202, 'refresh:c1'],
    ['POST', '/v1/clusters/c1/lease', 200, 'lease:c1'],
    ['POST', '/v1/clusters/c1/revoke', 200, 'revoke(false):c1'],
  ];
  for (const [method, path, status, reached] of routes) {
    t.context.calls.length = 0;
    const answer = await call(t, method, path);
    t.is(answer.status, status, `${method} ${path}`);
    t.deepEqual(t.context.calls, [`${reached}:admin:${answer.requestId}`], `${method} ${path}`);
  }
  t.deepEqual((await call(t, 'GET', '/v1/clusters')).body, { clusters: [{ id: 'c1' }] });
  t.deepEqual((await call(t, 'POST', '/v1/clusters/c1/lease')).body, { lease: { expiresAt: '2026-12-01T12:00:00.000Z' } });
  t.deepEqual((await call(t, 'POST', '/v1/clusters/c1/revoke', { body: '{"allSessions":true}' })).body, { revoked: 'c1' });
  t.true(t.context.calls.some((c) => c.startsWith('revoke(true):c1')));
});

test('POST /v1/clusters answers 201 with the checked request; run answers results as JSON', async (t) => {
  const created = await call(t, 'POST', '/v1/clusters', { body: JSON.stringify({ credentials: 'none', delivery: 'env', leaseSeconds: null }) });
  t.is(created.status, 201);
  t.deepEqual(created.body, { id: 'c-new', echo: { credentials: 'none', delivery: 'env', leaseSeconds: null } });
  const run = await call(t, 'POST', '/v1/clusters/c1/run', { body: JSON.stringify({ argv: ['echo', 'hi'] }) });
  t.is(run.status, 200);
  t.deepEqual(run.body, { results: [{ worker: 'w1', exitCode: 0, signal: null, stdout: 'echo hi', stderr: '' }] });
});

test('/healthz and /metrics answer without a token; /healthz is 503 when Redis is not', async (t) => {
  t.deepEqual(await call(t, 'GET', '/healthz', { token: null }).then((a) => [a.status, a.body]), [200, { redis: 'ok', replica: 'r-test' }]);
  const metrics = await call(t, 'GET', '/metrics', { token: null });
  t.is(metrics.status, 200);
  t.is(metrics.text, 'credfwd_clusters 1\n');
  t.regex(metrics.type ?? '', /^text\/plain/);
  t.context.redisUp.value = false;
  t.deepEqual(await call(t, 'GET', '/healthz', { token: null }).then((a) => [a.status, a.body]), [503, { redis: 'unreachable', replica: 'r-test' }]);
});

test('an unknown route is 404 NOT_FOUND whatever the method, and reaches nothing', async (t) => {
  for (const [method, path] of [['GET', '/'], ['GET', '/v1/cluster'], ['POST', '/v1/clusters/c1/explode'], ['GET', '/v1/clusters/c1/run/x'], ['GET', '/v1/clusters/bad%20id'], ['GET', `/v1/clusters/${'a'.repeat(129)}`]] as const) {
    const answer = await call(t, method, path);
    isError(t, answer, 404, 'NOT_FOUND');
  }
  t.deepEqual(t.context.calls, []);
});

test('a wrong method on a known route is 405 METHOD_NOT_ALLOWED naming the methods allowed', async (t) => {
  const wrong: Array<[string, string, string]> = [
    ['PUT', '/v1/clusters', 'use GET or POST'],
    ['POST', '/v1/clusters/c1', 'use GET or DELETE'],
    ['GET', '/v1/clusters/c1/refresh', 'use POST'],
    ['GET', '/v1/clusters/c1/lease', 'use POST'],
    ['DELETE', '/v1/clusters/c1/revoke', 'use POST'],
    ['GET', '/v1/clusters/c1/run', 'use POST'],
  ];
  for (const [method, path, hint] of wrong) {
    const answer = await call(t, method, path);
    isError(t, answer, 405, 'METHOD_NOT_ALLOWED');
    t.is(answer.body.hint, hint, `${method} ${path}`);
  }
  t.deepEqual(t.context.calls, []);
});

test('no token or a wrong one is 401 ADMIN_AUTH_FAILED, recorded as refused, never echoing the token', async (t) => {
  for (const token of [null, '', SECRET, `${ADMIN_TOKEN}x`]) {
    t.context.calls.length = 0;
    const answer = await call(t, 'GET', '/v1/clusters/c1', { token });
    isError(t, answer, 401, 'ADMIN_AUTH_FAILED');
    t.false(answer.text.includes(SECRET), 'the wrong token is not echoed');
    t.deepEqual(t.context.calls, [`refused:ADMIN_AUTH_FAILED:${answer.requestId}`]);
  }
  // Authentication comes before the body is read: a bad body without a token is still 401.
  isError(t, await call(t, 'POST', '/v1/clusters', { token: null, body: '{' }), 401, 'ADMIN_AUTH_FAILED');
});

test('a malformed body is 400 USAGE naming the fields at fault, never their values', async (t) => {
  isError(t, await call(t, 'POST', '/v1/clusters', { body: `{"environ": {"K": "${SECRET}"` }), 400, 'USAGE');
  const wrongShape = await call(t, 'POST', '/v1/clusters', {
    body: JSON.stringify({ forwardedCredentials: { accessKeyId: 'short', secretAccessKey: SECRET, sessionToken: 7, expiration: 'soon' }, environ: { K: 1 } }),
  });
  isError(t, wrongShape, 400, 'USAGE');
  t.regex(String(wrongShape.body.message), /forwardedCredentials\.accessKeyId/);
  t.regex(String(wrongShape.body.message), /environ\.K/);
  t.false(wrongShape.text.includes(SECRET));
  t.false(wrongShape.text.includes('short'));
  isError(t, await call(t, 'POST', '/v1/clusters', { body: JSON.stringify({ surprise: SECRET }) }), 400, 'USAGE');
  isError(t, await call(t, 'POST', '/v1/clusters/c1/run', { body: JSON.stringify({ argv: [] }) }), 400, 'USAGE');
  isError(t, await call(t, 'POST', '/v1/clusters/c1/run'), 400, 'USAGE');
  isError(t, await call(t, 'POST', '/v1/clusters/c1/revoke', { body: '{"allSessions":"yes"}' }), 400, 'USAGE');
  t.deepEqual(t.context.calls, [], 'a malformed body reaches no operation');
});

test('a body over the limit is 413 REQUEST_TOO_LARGE and reaches no operation', async (t) => {
  const body = JSON.stringify({ environ: { BIG: 'x'.repeat(MAX_ADMIN_BODY_BYTES) } });
  const answer = await call(t, 'POST', '/v1/clusters', { body });
  isError(t, answer, 413, 'REQUEST_TOO_LARGE');
  t.deepEqual(t.context.calls, []);
});

test('an operation\'s own error keeps its code and status; an unexpected one is a bare 500 INTERNAL', async (t) => {
  t.context.failWith.error = new CredfwdError('CLUSTER_NOT_FOUND', 'no cluster c1', 'list clusters');
  isError(t, await call(t, 'GET', '/v1/clusters/c1'), 404, 'CLUSTER_NOT_FOUND');
  t.context.failWith.error = new CredfwdError('POLICY_DENIED', 'not yours', 'ask its owner');
  isError(t, await call(t, 'DELETE', '/v1/clusters/c1'), 403, 'POLICY_DENIED');
  // A bug's message may carry anything, a secret included: the caller sees only that it failed.
  t.context.failWith.error = new Error(`boom with ${SECRET}`);
  const internal = await call(t, 'GET', '/v1/clusters');
  isError(t, internal, 500, 'INTERNAL');
  t.is(internal.body.message, 'internal error');
  t.false(internal.text.includes(SECRET));
});
