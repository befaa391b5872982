import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isolatedEnv, runCredfwd } from './helpers/credfwd-cli.ts';
import { startGovernedReplica } from './helpers/governance.ts';
import { startMoto, type Moto } from './helpers/moto.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { newServiceSecrets, type ReplicaProcess, type ServiceSecrets } from './helpers/replicas.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';

const run = promisify(execFile);

interface Context { redis: TestRedis; moto: Moto; iam: StsCounter; replica: ReplicaProcess; secrets: ServiceSecrets }
const test = anyTest as TestFn<Context>;

const ROLE_NAME = 'credfwd-revoke-test';
const ROLE = `arn:aws:iam::123456789012:role/${ROLE_NAME}`;
const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::123456789012:root' }, Action: 'sts:AssumeRole' }] });

/** The AWS CLI against moto directly, as an operator would look at the role. */
async function aws(t: ExecutionContext<Context>, args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run('aws', [...args, '--output', 'json'], {
    env: { PATH: process.env.PATH ?? '', AWS_ENDPOINT_URL: t.context.moto.url, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_DEFAULT_REGION: 'us-east-1', HOME: '/nonexistent' },
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test.before(async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  // IAM through a proxy the tests can make refuse PutRolePolicy, as an identity without that permission would see.
  const iam = await startStsCounter(moto.url);
  const secrets = newServiceSecrets();
  const replica = await startGovernedReplica({
    redisUrl: redis.url, prefix: prefixFor('governance-clusters').slice(0, -1), secrets, args: [],
    env: { AWS_ACCESS_KEY_ID: 'AKIAREPLICACLUSTERS1', AWS_SECRET_ACCESS_KEY: 'replica-clusters-secret', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: moto.url, AWS_ENDPOINT_URL_IAM: iam.url },
  });
  t.context = { redis, moto, iam, replica, secrets };
  await aws(t as unknown as ExecutionContext<Context>, ['iam', 'create-role', '--role-name', ROLE_NAME, '--assume-role-policy-document', TRUST]);
});

test.after.always(async (t) => {
  await t.context.replica?.kill();
  await Promise.all([t.context.iam?.stop(), t.context.moto?.stop(), t.context.redis?.stop()]);
});

function clusters(t: ExecutionContext<Context>, args: string[], env: Record<string, string> = {}): ReturnType<typeof runCredfwd> {
  const [sub, ...rest] = args;
  return runCredfwd(['clusters', sub!, '--coordinator', t.context.replica.url, ...rest], isolatedEnv({
    CREDFWD_ADMIN_TOKEN: t.context.secrets.adminToken, CREDFWD_COORDINATOR_PIN: `sha256:${t.context.replica.pin}`, ...env,
  }));
}

async function createRoleCluster(t: ExecutionContext<Context>): Promise<string> {
  return (await t.context.replica.admin.createCluster({ credentials: `role:${ROLE}`, leaseSeconds: null })).id;
}

test.serial('list, show, refresh and delete print JSON off a terminal; a gone cluster exits 1 with its code', async (t) => {
  const id = await createRoleCluster(t);
  const list = await clusters(t, ['list']);
  t.is(list.code, 0, list.stderr);
  const listed = (JSON.parse(list.stdout) as { clusters: { id: string; principal: string; roleArn: string }[] }).clusters.find((c) => c.id === id);
  t.like(listed, { principal: 'admin', roleArn: ROLE });
  const show = await clusters(t, ['show', id]);
  t.is(show.code, 0, show.stderr);
  t.like(JSON.parse(show.stdout), { id, mode: 'role', roleArn: ROLE });
  const refresh = await clusters(t, ['refresh', id]);
  t.is(refresh.code, 0, refresh.stderr);
  t.deepEqual(JSON.parse(refresh.stdout), { id, refresh: 'requested' });
  t.is((await clusters(t, ['delete', id])).code, 0);
  const gone = await clusters(t, ['show', id]);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /^error\[CLUSTER_NOT_FOUND\]: /m);
  t.false(gone.stderr.includes(t.context.secrets.adminToken));
});

test.serial('usage errors exit 2: no --coordinator, no pin, no token, a missing id', async (t) => {
  const env = isolatedEnv({ CREDFWD_ADMIN_TOKEN: t.context.secrets.adminToken });
  for (const args of [['clusters', 'list'], ['clusters', 'list', '--coordinator', t.context.replica.url], ['clusters', 'show', '--coordinator', t.context.replica.url, '--coordinator-pin', `sha256:${t.context.replica.pin}`]]) {
    const result = await runCredfwd(args, env);
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, /^error\[USAGE\]: /m);
  }
  const noToken = await runCredfwd(['clusters', 'list', '--coordinator', t.context.replica.url, '--coordinator-pin', `sha256:${t.context.replica.pin}`], isolatedEnv());
  t.is(noToken.code, 2);
  const wrongToken = await clusters(t, ['list'], { CREDFWD_ADMIN_TOKEN: 'x'.repeat(43) });
  t.is(wrongToken.code, 1);
  t.regex(wrongToken.stderr, /^error\[ADMIN_AUTH_FAILED\]: /m);
});

test.serial('revoke deletes the cluster and puts a deny on the role for that cluster\'s sessions only', async (t) => {
  const id = await createRoleCluster(t);
  const result = await clusters(t, ['revoke', id]);
  t.is(result.code, 0, result.stderr);
  t.like(JSON.parse(result.stdout), { id, roleArn: ROLE, policyName: `credfwd-revoke-${id}`, allSessions: false });
  const roleId = ((await aws(t, ['iam', 'get-role', '--role-name', ROLE_NAME])).Role as { RoleId: string }).RoleId;
  const policy = (await aws(t, ['iam', 'get-role-policy', '--role-name', ROLE_NAME, '--policy-name', `credfwd-revoke-${id}`])).PolicyDocument as { Statement: Record<string, unknown>[] };
  t.deepEqual(policy.Statement, [{ Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringLike: { 'aws:userid': `${roleId}:credfwd-${id}` } } }]);
  t.is((await clusters(t, ['show', id])).code, 1, 'the cluster is gone');
  // Without --audit-log the replica writes its audit lines to stderr.
  const audit = t.context.replica.service.output().split('\n').filter((l) => l.includes('"type":"audit"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(audit.find((l) => l.action === 'revoke' && l.cluster === id), { outcome: 'ok', principal: 'admin', roleArn: ROLE });
});

test.serial('revoke --all-sessions denies every session of the role issued before now', async (t) => {
  const id = await createRoleCluster(t);
  const before = Date.now();
  const result = await clusters(t, ['revoke', id, '--all-sessions']);
  t.is(result.code, 0, result.stderr);
  const policy = (await aws(t, ['iam', 'get-role-policy', '--role-name', ROLE_NAME, '--policy-name', 'credfwd-revoke-older-sessions'])).PolicyDocument as { Statement: { Condition: { DateLessThan: Record<string, string> } }[] };
  const issued = Date.parse(policy.Statement[0]!.Condition.DateLessThan['aws:TokenIssueTime']!);
  t.true(issued >= before - 1000 && issued <= Date.now() + 1000, 'the cut-off is the time of the revoke');
});

test.serial('revoke without iam:PutRolePolicy fails with REVOKE_FAILED and still deletes the cluster', async (t) => {
  const id = await createRoleCluster(t);
  const refuse = t.context.iam.inject({ fault: { status: 403, code: 'AccessDenied', message: 'User is not authorized to perform: iam:PutRolePolicy' }, when: (p) => p.get('Action') === 'PutRolePolicy' });
  t.teardown(refuse);
  const result = await clusters(t, ['revoke', id]);
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[REVOKE_FAILED\]: .*iam:PutRolePolicy/m);
  t.regex(result.stderr, /^hint: .*the cluster itself was deleted/m);
  t.is((await clusters(t, ['show', id])).code, 1, 'the cluster is deleted all the same');
  const audit = t.context.replica.service.output().split('\n').filter((l) => l.includes('"type":"audit"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(audit.find((l) => l.action === 'revoke' && l.cluster === id), { outcome: 'failed', code: 'REVOKE_FAILED' });
});

test.serial('revoke of a cluster without a role changes nothing and says to delete it', async (t) => {
  const { id } = await t.context.replica.admin.createCluster({ credentials: 'none', leaseSeconds: null });
  const result = await clusters(t, ['revoke', id]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^error\[CONFIG_INVALID\]: .*no role/m);
  t.is((await clusters(t, ['show', id])).code, 0, 'the cluster is still there');
});
