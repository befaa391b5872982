import anyTest, { type TestFn } from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isolatedEnv, runCredfwd } from './helpers/credfwd-cli.ts';
import { principalToken, startGovernedReplica } from './helpers/governance.ts';
import { startMoto, type Moto } from './helpers/moto.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { eventually, newServiceSecrets, startReplica, type ReplicaProcess } from './helpers/replicas.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';

interface Context { redis: TestRedis; moto: Moto; sts: StsCounter }
const test = anyTest as TestFn<Context>;

const REPLICA_IDENTITY = { AWS_ACCESS_KEY_ID: 'AKIAREPLICAPOLICY001', AWS_SECRET_ACCESS_KEY: 'replica-policy-secret', AWS_REGION: 'us-east-1' };
const ML_ROLE = 'arn:aws:iam::123456789012:role/ml-train';
const OTHER_ROLE = 'arn:aws:iam::123456789012:role/prod-admin';

test.before(async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  t.context = { redis, moto, sts: await startStsCounter(moto.url) };
});

test.after.always(async (t) => {
  await Promise.all([t.context.sts?.stop(), t.context.moto?.stop(), t.context.redis?.stop()]);
});

function policyText(sha256: string, roles: string[]): string {
  return [
    'principals:',
    `  alice: { tokenSha256: "${sha256}", groups: [ml] }`,
    'rules:',
    '  - name: ml-roles',
    '    groups: [ml]',
    '    modes: [role]',
    `    roles: [${roles.map((r) => JSON.stringify(r)).join(', ')}]`,
    '    maxDurationSeconds: 3600',
    '    maxWorkers: 4',
  ].join('\n');
}

interface Governed { replica: ReplicaProcess; policyFile: string; auditFile: string; alice: string }

async function governed(t: import('ava').ExecutionContext<Context>): Promise<Governed> {
  const alice = principalToken();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-policy-'));
  const policyFile = join(dir, 'policy.yaml');
  const auditFile = join(dir, 'audit.log');
  writeFileSync(policyFile, policyText(alice.sha256, ['arn:aws:iam::123456789012:role/ml-*']));
  const replica = await startGovernedReplica({
    redisUrl: t.context.redis.url, prefix: prefixFor(t.title).slice(0, -1), secrets: newServiceSecrets(),
    env: { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: t.context.sts.url }, args: ['--policy', policyFile, '--audit-log', auditFile],
  });
  t.teardown(() => replica.kill());
  return { replica, policyFile, auditFile, alice: alice.token };
}

const assumedRole = (arn: string) => (p: URLSearchParams): boolean => p.get('RoleArn') === arn;

test.serial('a request outside the policy is 403 POLICY_DENIED naming the rule, and nothing changes', async (t) => {
  const { replica, alice, auditFile } = await governed(t);
  const ask = (body: Record<string, unknown>) => replica.admin.request('POST', '/v1/clusters', { workers: 2, ...body }, alice);
  for (const [body, reason] of [
    [{ credentials: `role:${OTHER_ROLE}` }, /role arn:aws:iam::123456789012:role\/prod-admin matches none/],
    [{ credentials: `role:${ML_ROLE}`, durationSeconds: 7200 }, /duration 7200s is over its maxDurationSeconds 3600/],
    [{ credentials: `role:${ML_ROLE}`, workers: 5 }, /5 workers is over its maxWorkers 4/],
    [{ credentials: 'none' }, /mode none is not one of \[role\]/],
  ] as const) {
    const answer = await ask(body);
    t.is(answer.status, 403);
    t.is((answer.body as { code: string }).code, 'POLICY_DENIED');
    t.regex((answer.body as { message: string }).message, /rule "ml-roles"/);
    t.regex((answer.body as { message: string }).message, reason);
  }
  t.is(t.context.sts.count('AssumeRole', assumedRole(OTHER_ROLE)), 0, 'a denied request reached STS');
  t.deepEqual((await replica.admin.request('GET', '/v1/clusters', undefined, alice)).body, { clusters: [] });
  const allowed = await ask({ credentials: `role:${ML_ROLE}` });
  t.is(allowed.status, 201);
  const denied = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.action === 'denied');
  t.is(denied.length, 4);
  t.like(denied[0], { principal: 'alice', outcome: 'denied', code: 'POLICY_DENIED', roleArn: OTHER_ROLE, mode: 'role' });
});

test.serial('SIGHUP reloads the policy; a bad reload keeps the old one and says why; clusters stay', async (t) => {
  const { replica, policyFile, alice, auditFile } = await governed(t);
  const ask = (arn: string) => replica.admin.request('POST', '/v1/clusters', { credentials: `role:${arn}`, workers: 1 }, alice);
  const kept = await ask(ML_ROLE);
  t.is(kept.status, 201);
  t.is((await ask(OTHER_ROLE)).status, 403);

  const sha256 = /tokenSha256: "([0-9a-f]{64})"/.exec(readFileSync(policyFile, 'utf8'))![1]!;
  writeFileSync(policyFile, policyText(sha256, ['arn:aws:iam::123456789012:role/ml-*', OTHER_ROLE]));
  replica.service.child.kill('SIGHUP');
  await eventually(async () => (replica.service.output().includes('policy reloaded') ? true : undefined), 5_000, 'the replica to log the reload');
  t.is((await ask(OTHER_ROLE)).status, 201);

  writeFileSync(policyFile, 'rules:\n  - principals: [alice]\n    roles: ["arn:aws:iam::12345:role/x"]\n');
  replica.service.child.kill('SIGHUP');
  const output = await eventually(async () => {
    const text = replica.service.output();
    return text.includes('policy reload failed') ? text : undefined;
  }, 5_000, 'the replica to log the failed reload');
  t.regex(output, /line 3, rules\[0\]\.roles\[0\]/);
  // The reloaded policy stays in force, and every cluster is still there.
  t.is((await ask(OTHER_ROLE)).status, 201);
  const ids = ((await replica.admin.request('GET', '/v1/clusters', undefined, alice)).body as { clusters: { id: string }[] }).clusters.map((c) => c.id);
  t.true(ids.includes((kept.body as { id: string }).id));
  t.is(ids.length, 3);
  const reloads = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.action === 'policy-reload');
  t.deepEqual(reloads.map((l) => l.outcome), ['ok', 'failed']);
});

test('credfwd serve refuses to start on a bad policy, naming the line and path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-bad-policy-'));
  const cases = {
    typo: ['rules:\n  - principals: [alice\n    modes: [role]\n', /line \d+: /],
    'unknown field': ['rules:\n  - principals: [alice]\n    maxWorker: 4\n', /line 3, rules\[0\]\.maxWorker: unknown field "maxWorker"/],
    'pattern matching nothing': ['rules:\n  - principals: [alice]\n    roles: ["arn:aws:iam:123456789012:role/ml-*"]\n', /line 3, rules\[0\]\.roles\[0\]: role pattern .* matches no IAM role ARN/],
    'rule denying everything': ['{"rules": [{"principals": ["alice"], "modes": ["role"], "roles": []}]}', /line 1, rules\[0\]\.modes: the rule allows no mode/],
  } as const;
  for (const [name, [text, expected]] of Object.entries(cases)) {
    const file = join(dir, `${name.replaceAll(' ', '-')}.yaml`);
    writeFileSync(file, text);
    const result = await runCredfwd(['serve', '--listen', '127.0.0.1:0', '--redis', t.context.redis.url, '--policy', file], isolatedEnv({ CREDFWD_STATE_KEY: newServiceSecrets().stateKey, CREDFWD_ADMIN_TOKEN: newServiceSecrets().adminToken }));
    t.is(result.code, 1, name);
    t.regex(result.stderr, /^error\[POLICY_INVALID\]: /m, name);
    t.regex(result.stderr, expected, name);
  }
});

test('without --policy the service says at start that every principal may do everything', async (t) => {
  const replica = await startReplica({ redisUrl: t.context.redis.url, prefix: prefixFor(t.title).slice(0, -1), secrets: newServiceSecrets() });
  t.teardown(() => replica.kill());
  t.regex(replica.service.output(), /no --policy: every principal may do everything/);
});
