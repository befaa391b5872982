import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { isolatedEnv, runCredfwd } from './helpers/credfwd-cli.ts';
import { principalToken, startGovernedReplica } from './helpers/governance.ts';
import { createIamUser, startMoto, type Moto } from './helpers/moto.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { eventually, newServiceSecrets } from './helpers/replicas.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';

interface Context { redis: TestRedis; moto: Moto; sts: StsCounter }
const test = anyTest as TestFn<Context>;

const ROLE = 'arn:aws:iam::123456789012:role/ml-train';
const REPLICA_IDENTITY = { AWS_ACCESS_KEY_ID: 'AKIAREPLICASTS000001', AWS_SECRET_ACCESS_KEY: 'replica-sts-secret', AWS_REGION: 'us-east-1' };

test.before(async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  t.context = { redis, moto, sts: await startStsCounter(moto.url) };
});

test.after.always(async (t) => {
  await Promise.all([t.context.sts?.stop(), t.context.moto?.stop(), t.context.redis?.stop()]);
});

/** What STS received for one action, as Query parameters (the SDK and the CLI send them so). */
function received(t: ExecutionContext<Context>, action: string, when: (p: URLSearchParams) => boolean): URLSearchParams {
  let found: URLSearchParams | undefined;
  t.context.sts.count(action, (p) => {
    if (when(p)) found = p;
    return false;
  });
  if (!found) throw new Error(`STS received no ${action} that matched; it saw ${t.context.sts.calls().join(', ')}`);
  return found;
}

/** Session tags of a request: `Tags.member.N.Key/Value`. */
function tagsOf(params: URLSearchParams): Record<string, string> {
  const tags: Record<string, string> = {};
  for (let n = 1; params.has(`Tags.member.${n}.Key`); n++) tags[params.get(`Tags.member.${n}.Key`)!] = params.get(`Tags.member.${n}.Value`)!;
  return tags;
}

function statementsOf(params: URLSearchParams): { Action: string | string[]; Resource: string }[] {
  return (JSON.parse(params.get('Policy') ?? '{}') as { Statement: { Action: string | string[]; Resource: string }[] }).Statement;
}

test.serial('service: AssumeRole carries the principal as SourceIdentity and tags, the cluster in the session name, and the scopes as its Policy', async (t) => {
  const alice = principalToken();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-sts-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, [
    'principals:', `  alice: { tokenSha256: "${alice.sha256}", groups: [ml] }`,
    'rules:', '  - groups: [ml]', '    modes: [role]', '    roles: ["arn:aws:iam::123456789012:role/ml-*"]', '    scopes: ["s3://ml-data/team-a/*"]',
  ].join('\n'));
  const replica = await startGovernedReplica({
    redisUrl: t.context.redis.url, prefix: prefixFor(t.title).slice(0, -1), secrets: newServiceSecrets(),
    env: { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: t.context.sts.url }, args: ['--policy', policyFile, '--audit-log', join(dir, 'audit.log')],
  });
  t.teardown(() => replica.kill());
  const outside = await replica.admin.request('POST', '/v1/clusters', { credentials: `role:${ROLE}`, scopes: ['s3://ml-data/team-b/:write'] }, alice.token);
  t.is(outside.status, 403);
  t.regex((outside.body as { message: string }).message, /scope s3:\/\/ml-data\/team-b\/:write is outside its scopes/);
  const posing = await replica.admin.request('POST', '/v1/clusters', { credentials: { roleArn: ROLE, sourceIdentity: 'bob' }, scopes: ['s3://ml-data/team-a/x'] }, alice.token);
  t.is(posing.status, 403, 'a principal cannot set another SourceIdentity');
  const created = await replica.admin.request('POST', '/v1/clusters', { credentials: `role:${ROLE}`, scopes: ['s3://ml-data/team-a/x:write'] }, alice.token);
  t.is(created.status, 201);
  const id = (created.body as { id: string }).id;
  const call = received(t, 'AssumeRole', (p) => p.get('RoleSessionName') === `credfwd-${id}`);
  t.is(call.get('SourceIdentity'), 'alice');
  t.deepEqual(tagsOf(call), { 'credfwd:cluster': id, 'credfwd:principal': 'alice' });
  const statements = statementsOf(call);
  t.true(statements.some((s) => s.Resource === 'arn:aws:s3:::ml-data/team-a/x*' && [s.Action].flat().includes('s3:PutObject')));
  t.true(statements.some((s) => s.Resource === 'arn:aws:s3:::ml-data' && s.Action === 's3:ListBucket'));
  t.false(JSON.stringify(statements).includes('team-b'));
  const shown = (await replica.admin.request('GET', `/v1/clusters/${id}`, undefined, alice.token)).body as Record<string, unknown>;
  t.like(shown, { principal: 'alice', roleArn: ROLE, scopes: ['s3://ml-data/team-a/x:write'] });
  // A forced refresh carries the same attribution.
  t.context.sts.reset();
  t.is((await replica.admin.request('POST', `/v1/clusters/${id}/refresh`, undefined, alice.token)).status, 202);
  await eventually(async () => (t.context.sts.count('AssumeRole', (p) => p.get('RoleSessionName') === `credfwd-${id}`) > 0 ? true : undefined), 10_000, 'the forced refresh to reach STS');
  t.is(received(t, 'AssumeRole', (p) => p.get('RoleSessionName') === `credfwd-${id}`).get('SourceIdentity'), 'alice');
});

test.serial('credfwd launch (embedded) --scope and --session-policy: AssumeRole gets both in one Policy, the launcher\'s ARN as SourceIdentity and tag, and --audit-log the actions', async (t) => {
  const { moto, sts } = t.context;
  const launcher = await createIamUser(moto, 'erin');
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-sts-embedded-'));
  const policy = join(dir, 'session.json');
  writeFileSync(policy, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/features' }] }));
  const audit = join(dir, 'audit.log');
  sts.reset();
  const result = await runCredfwd(
    ['launch', '--workers', '1', '--json', '--credentials', `role:${ROLE}`, '--scope', 's3://ml-data/team-a/', '--session-policy', policy, '--audit-log', audit, '--region', 'us-east-1', '--', 'true'],
    isolatedEnv({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: sts.url }),
  );
  t.is(result.code, 0, result.stderr);
  t.deepEqual(sts.calls(), ['GetCallerIdentity', 'AssumeRole'], 'the launcher\'s ARN asked once, to attribute the sessions to it');
  const call = received(t, 'AssumeRole', () => true);
  t.regex(call.get('RoleSessionName') ?? '', /^credfwd-c-[0-9a-f]+$/);
  t.is(call.get('SourceIdentity'), 'erin', 'the user name of the launcher\'s ARN');
  t.is(tagsOf(call)['credfwd:principal'], launcher.arn);
  const statements = statementsOf(call);
  t.true(statements.some((s) => s.Resource === 'arn:aws:s3:::ml-data/team-a/*' && !JSON.stringify(s.Action).includes('PutObject')), 'a scope without :write reads only');
  t.true(statements.some((s) => s.Action === 'dynamodb:GetItem'));
  const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines.map((l) => l.action), ['create', 'run', 'delete']);
  t.like(lines[0], { outcome: 'ok', principal: userInfo().username, mode: 'role', roleArn: ROLE });
  t.false(readFileSync(audit, 'utf8').includes(launcher.secretAccessKey));
});

test.serial('forward with long-term keys and --scope: GetFederationToken with the policy, never GetSessionToken', async (t) => {
  const { moto, sts } = t.context;
  const launcher = await createIamUser(moto, 'frank');
  sts.reset();
  const result = await runCredfwd(
    ['launch', '--workers', '1', '--json', '--scope', 's3://ml-data/out/:write', '--region', 'us-east-1', '--', 'true'],
    isolatedEnv({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: sts.url }),
  );
  t.is(result.code, 0, result.stderr);
  t.deepEqual(sts.calls(), ['GetCallerIdentity', 'GetFederationToken'], 'the launcher\'s ARN asked once, for the principal tag');
  const call = received(t, 'GetFederationToken', () => true);
  t.regex(call.get('Name') ?? '', /^credfwd-c-[0-9a-f]+$/);
  t.is(tagsOf(call)['credfwd:principal'], launcher.arn);
  t.true(statementsOf(call).some((s) => s.Resource === 'arn:aws:s3:::ml-data/out/*' && [s.Action].flat().includes('s3:PutObject')));
});

test.serial('credfwd launch --coordinator, forward and --scope: the launcher calls GetFederationToken, the service checks the scope against the policy', async (t) => {
  const { moto, sts } = t.context;
  const alice = principalToken();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-sts-remote-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, ['principals:', `  alice: { tokenSha256: "${alice.sha256}" }`, 'rules:', '  - principals: [alice]', '    modes: [forward]', '    maxWorkers: 1', '    scopes: ["s3://ml-data/*"]'].join('\n'));
  const audit = join(dir, 'audit.log');
  const replica = await startGovernedReplica({
    redisUrl: t.context.redis.url, prefix: prefixFor(t.title).slice(0, -1), secrets: newServiceSecrets(),
    env: { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: sts.url }, args: ['--policy', policyFile, '--audit-log', audit],
  });
  t.teardown(() => replica.kill());
  const launcher = await createIamUser(moto, 'gina');
  const env = isolatedEnv({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: sts.url, CREDFWD_ADMIN_TOKEN: alice.token, CREDFWD_COORDINATOR_PIN: `sha256:${replica.pin}` });
  const base = ['launch', '--coordinator', replica.url, '--workers', '1', '--json', '--region', 'us-east-1'];
  sts.reset();
  const outside = await runCredfwd([...base, '--scope', 's3://other-data/x', '--', 'true'], env);
  t.is(outside.code, 1);
  t.regex(outside.stderr, /^error\[POLICY_DENIED\]: .*scope s3:\/\/other-data\/x:read is outside its scopes/m);
  const inside = await runCredfwd([...base, '--scope', 's3://ml-data/x', '--', 'true'], env);
  t.is(inside.code, 0, inside.stderr);
  t.deepEqual(sts.calls().filter((c) => c !== 'GetFederationToken'), [], 'the launcher never calls GetSessionToken when scoping');
  t.true(statementsOf(received(t, 'GetFederationToken', () => true)).some((s) => s.Resource === 'arn:aws:s3:::ml-data/x*'));
  const lines = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(lines.find((l) => l.action === 'create' && l.outcome === 'ok'), { principal: 'alice', mode: 'forward', scopes: ['s3://ml-data/x:read'] });
  t.false(readFileSync(audit, 'utf8').includes(launcher.secretAccessKey));
});

test.serial('forward with temporary launcher credentials cannot be scoped: SCOPE_UNSUPPORTED pointing at role mode, no STS call', async (t) => {
  const { sts } = t.context;
  sts.reset();
  const result = await runCredfwd(
    ['launch', '--workers', '1', '--scope', 's3://ml-data/out/', '--region', 'us-east-1', '--', 'true'],
    isolatedEnv({ AWS_ACCESS_KEY_ID: 'ASIATEMPORARYLAUNCH1', AWS_SECRET_ACCESS_KEY: 'temporary-secret', AWS_SESSION_TOKEN: 'temporary-session-token', AWS_ENDPOINT_URL_STS: sts.url }),
  );
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[SCOPE_UNSUPPORTED\]: /m);
  t.regex(result.stderr, /^hint: .*role mode/m);
  t.deepEqual(sts.calls(), []);
  t.false(result.stderr.includes('temporary-session-token'));
});

test('--audit-log is for a local cluster: with --coordinator it is a usage error', async (t) => {
  const result = await runCredfwd(['launch', '--coordinator', 'https://127.0.0.1:9', '--audit-log', '/tmp/x', '--', 'true'], isolatedEnv());
  t.is(result.code, 2);
  t.regex(result.stderr, /^error\[USAGE\]: --audit-log is for a local cluster/m);
});

test('a malformed --scope or --session-policy is a usage error before any STS call', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-sts-bad-'));
  const notJson = join(dir, 'policy.json');
  writeFileSync(notJson, '{"Version": ');
  for (const args of [['--scope', 'http://ml-data/x'], ['--scope', 's3://ml-data/*'], ['--session-policy', notJson], ['--credentials', 'none', '--scope', 's3://ml-data/x']]) {
    const result = await runCredfwd(['launch', '--workers', '1', ...args, '--', 'true'], isolatedEnv({ AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:9' }));
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, /^error\[CONFIG_INVALID\]: /m);
  }
});
