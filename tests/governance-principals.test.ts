import anyTest, { type TestFn } from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { principalToken, startGovernedReplica, startOidcIssuer, type OidcIssuer } from './helpers/governance.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { eventually, newServiceSecrets, type ReplicaProcess } from './helpers/replicas.ts';

interface Context {
  redis: TestRedis;
  issuer: OidcIssuer;
  replica: ReplicaProcess;
  alice: string;
  bob: string;
  auditFile: string;
  adminToken: string;
}
const test = anyTest as TestFn<Context>;
const AUDIENCE = 'credfwd-test';

test.before(async (t) => {
  const [redis, issuer] = await Promise.all([startRedis(), startOidcIssuer()]);
  const alice = principalToken();
  const bob = principalToken();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-principals-'));
  const policyFile = join(dir, 'policy.yaml');
  const auditFile = join(dir, 'audit.log');
  writeFileSync(policyFile, [
    'principals:',
    `  alice: { tokenSha256: "${alice.sha256}", groups: [ml] }`,
    `  bob: { tokenSha256: "${bob.sha256}" }`,
    `oidc: { issuer: "${issuer.issuer}", audience: ${AUDIENCE}, principalClaim: email, groupsClaim: groups }`,
    'rules:',
    '  - groups: [ml]',
    '    modes: [none]',
    '  - principals: [bob]',
    '    modes: [none]',
  ].join('\n'));
  const secrets = newServiceSecrets();
  const replica = await startGovernedReplica({
    redisUrl: redis.url, prefix: prefixFor(t.title).slice(0, -1), secrets, args: ['--policy', policyFile, '--audit-log', auditFile],
  });
  t.context = { redis, issuer, replica, alice: alice.token, bob: bob.token, auditFile, adminToken: secrets.adminToken };
});

test.after.always(async (t) => {
  await t.context.replica?.kill();
  await Promise.all([t.context.issuer?.stop(), t.context.redis?.stop()]);
});

async function createAs(t: { context: Context }, token: string): Promise<{ status: number; body: { id?: string; code?: string } }> {
  const answer = await t.context.replica.admin.request('POST', '/v1/clusters', { credentials: 'none' }, token);
  return answer as { status: number; body: { id?: string; code?: string } };
}

test('a token the policy lists by SHA-256 is its principal, and the cluster is theirs', async (t) => {
  const created = await createAs(t, t.context.alice);
  t.is(created.status, 201);
  const shown = await t.context.replica.admin.request('GET', `/v1/clusters/${created.body.id}`, undefined, t.context.alice);
  t.is((shown.body as { principal: string }).principal, 'alice');
  // Bob may not see, run on or delete it; the break-glass admin may.
  const asBob = await t.context.replica.admin.request('DELETE', `/v1/clusters/${created.body.id}`, undefined, t.context.bob);
  t.is(asBob.status, 403);
  t.is((asBob.body as { code: string }).code, 'POLICY_DENIED');
  const bobsList = await t.context.replica.admin.request('GET', '/v1/clusters', undefined, t.context.bob);
  t.false(JSON.stringify(bobsList.body).includes(created.body.id!));
  t.is((await t.context.replica.admin.request('DELETE', `/v1/clusters/${created.body.id}`)).status, 204);
});

test('the shared admin token is the break-glass principal admin', async (t) => {
  const created = await t.context.replica.admin.request('POST', '/v1/clusters', { credentials: 'none' });
  t.is(created.status, 201);
  const shown = await t.context.replica.admin.request('GET', `/v1/clusters/${(created.body as { id: string }).id}`);
  t.is((shown.body as { principal: string }).principal, 'admin');
});

test('an unknown token is 401, as before principals', async (t) => {
  const answer = await createAs(t, principalToken().token);
  t.is(answer.status, 401);
  t.is(answer.body.code, 'ADMIN_AUTH_FAILED');
});

test('an ID token of the configured issuer names its principal by the configured claim', async (t) => {
  const token = await t.context.issuer.sign({ sub: 'u-1', email: 'carol@example.com', groups: ['ml'] }, { audience: AUDIENCE });
  const created = await createAs(t, token);
  t.is(created.status, 201);
  const shown = await t.context.replica.admin.request('GET', `/v1/clusters/${created.body.id}`, undefined, token);
  t.is((shown.body as { principal: string }).principal, 'carol@example.com');
});

test('ID tokens with the wrong audience or issuer, expired, or signed with an unknown key are 401, and the log says why without the token', async (t) => {
  const { issuer } = t.context;
  const claims = { email: 'carol@example.com', groups: ['ml'] };
  const refused = {
    audience: await issuer.sign(claims, { audience: 'someone-else' }),
    issuer: await issuer.sign(claims, { audience: AUDIENCE, issuer: 'http://127.0.0.1:1' }),
    expired: await issuer.sign(claims, { audience: AUDIENCE, expiresAt: new Date(Date.now() - 120_000) }),
    unknownKey: await issuer.sign(claims, { audience: AUDIENCE, key: 'unknown' }),
  };
  for (const [why, token] of Object.entries(refused)) {
    const answer = await createAs(t, token);
    t.is(answer.status, 401, why);
    t.is(answer.body.code, 'ADMIN_AUTH_FAILED', why);
  }
  const output = await eventually(async () => {
    const text = t.context.replica.service.output();
    return ['ERR_JWT_CLAIM_VALIDATION_FAILED', 'ERR_JWT_EXPIRED', 'ERR_JWKS_NO_MATCHING_KEY'].every((code) => text.includes(code)) ? text : undefined;
  }, 5_000, 'the replica to log why each ID token was refused');
  for (const token of Object.values(refused)) t.false(output.includes(token));
});

test('the audit log names principals and request ids and holds no token', async (t) => {
  await createAs(t, t.context.bob);
  const lines = readFileSync(t.context.auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const create = lines.find((l) => l.action === 'create' && l.principal === 'bob');
  t.truthy(create);
  t.is(create?.outcome, 'ok');
  t.regex(String(create?.requestId), /^[0-9a-f-]{36}$/);
  t.truthy(lines.find((l) => l.action === 'denied' && l.code === 'ADMIN_AUTH_FAILED' && l.principal === null));
  const text = readFileSync(t.context.auditFile, 'utf8');
  for (const secret of [t.context.alice, t.context.bob, t.context.adminToken]) t.false(text.includes(secret));
});
