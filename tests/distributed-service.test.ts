import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Redis } from 'ioredis';
import { openJson, parseJoinString } from '@credfwd/shared';
import { spawnAgent, type SpawnedAgent } from './helpers/agents.ts';
import { isolatedEnv, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';
import { createIamUser, startMoto, type Moto } from './helpers/moto.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';
import { dumpRedis, eventually, newServiceSecrets, startReplicaSet, type ReplicaProcess, type ReplicaSet } from './helpers/replicas.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';
import { STS_FAULTS } from './helpers/sts-faults.ts';

interface Context { redis: TestRedis; moto: Moto; sts: StsCounter }
const test = anyTest as TestFn<Context>;

const ROLE_ARN = 'arn:aws:iam::123456789012:role/credfwd-distributed';
/** The replicas' own AWS identity: in distributed mode they mint roles with it. Moto accepts any signature. */
const REPLICA_IDENTITY = { AWS_ACCESS_KEY_ID: 'AKIAREPLICAIDENTITY1', AWS_SECRET_ACCESS_KEY: 'replica-identity-secret', AWS_REGION: 'us-east-1' };

test.before(async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  t.context = { redis, moto, sts: await startStsCounter(moto.url) };
});

test.after.always(async (t) => {
  await t.context.sts?.stop();
  await Promise.all([t.context.moto?.stop(), t.context.redis?.stop()]);
});

function startService(t: ExecutionContext<Context>, count: number): Promise<ReplicaSet> {
  return startReplicaSet(t, t.context.redis.url, count, { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: t.context.sts.url });
}

function agents(t: ExecutionContext<Context>, joinString: string, ids: string[]): SpawnedAgent[] {
  const spawned = ids.map((id) => spawnAgent(joinString, id));
  t.teardown(async () => {
    for (const a of spawned) a.child.kill('SIGKILL');
    await Promise.all(spawned.map((a) => a.result.catch(() => undefined)));
  });
  return spawned;
}

interface ShownAgent { agentId: string; replicaId: string; ackedSeq: number }
interface ShownCluster {
  agents: ShownAgent[];
  credentials: { seq: number } | null;
  refresh: { state: string; consecutiveFailures: number; lastError: { code: string; retryable: boolean } | null } | null;
}

async function show(replica: ReplicaProcess, clusterId: string): Promise<ShownCluster> {
  return await replica.admin.showCluster(clusterId) as unknown as ShownCluster;
}

/** Resolves when every named agent has acknowledged credentials with at least `seq` (0 in null mode: joined). */
function allAcked(replica: ReplicaProcess, clusterId: string, ids: string[], seq: number): Promise<ShownCluster> {
  return eventually(async () => {
    const shown = await show(replica, clusterId);
    const acked = shown.agents.filter((a) => a.ackedSeq >= seq).map((a) => a.agentId);
    return ids.every((id) => acked.includes(id)) ? shown : undefined;
  }, 30_000, `agents ${ids.join(',')} at seq ${seq}`);
}

test.serial('three replicas: agents spread across them, each refresh is one AssumeRole across all replicas and reaches every agent', async (t) => {
  const { prefix, secrets, replicas } = await startService(t, 3);
  const [r1, r2, r3] = replicas as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  t.is(new Set(replicas.map((r) => r.pin)).size, 1, 'every replica serves the one shared certificate');

  // Watch the replicas' own channel: at each new seq, count AssumeRole calls made so far for this cluster.
  const watcher = new Redis(t.context.redis.url);
  t.teardown(() => watcher.disconnect());
  const stateKey = new Uint8Array(Buffer.from(secrets.stateKey, 'base64url'));
  let clusterId = '';
  const assumeRoles = (): number => t.context.sts.count('AssumeRole', (p) => p.get('RoleSessionName') === `credfwd-${clusterId}`);
  const countAtSeq = new Map<number, number>();
  const reachedSeq4 = new Promise<void>((resolve) => {
    watcher.on('message', (_channel: string, text: string) => {
      const count = assumeRoles();
      void openJson(stateKey, text).then((message) => {
        const m = message as { type: string; clusterId: string; seq: number };
        if (m.type !== 'credentials' || m.clusterId !== clusterId) return;
        countAtSeq.set(m.seq, count);
        if (m.seq >= 4) resolve();
      });
    });
  });
  await watcher.subscribe(`${prefix}:events`);

  const created = await r2.admin.createCluster({ credentials: `role:${ROLE_ARN}`, refreshIntervalSeconds: 2, durationSeconds: 900 });
  clusterId = created.id;
  t.deepEqual(parseJoinString(created.joinString).addresses.sort(), replicas.map((r) => r.address).sort(), 'the join string lists every replica');
  const ids = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
  agents(t, created.joinString, ids);
  const joined = await allAcked(r1, clusterId, ids, 1);
  t.deepEqual([...new Set(joined.agents.map((a) => a.replicaId))].sort(), replicas.map((r) => r.replicaId).sort(), 'agents are spread over all three replicas');

  await reachedSeq4;
  // seq 1 was minted at creation; every later seq is one refresh. Counted as each was announced, before the next could start.
  t.deepEqual([...countAtSeq].filter(([seq]) => seq <= 4).sort(([a], [b]) => a - b), [[2, 2], [3, 3], [4, 4]], 'exactly one AssumeRole per refresh, across three replicas');
  const current = await allAcked(r3, clusterId, ids, 4);
  t.true(current.agents.every((a) => a.ackedSeq >= 4), 'every agent, on every replica, acknowledged the refreshed credentials');

  const metrics = await r1.admin.request('GET', '/metrics', undefined, null);
  t.is(metrics.status, 200);
  t.regex(String(metrics.body), /^credfwd_connected_agents \d+$/m);
  t.regex(String(metrics.body), /^credfwd_clusters [1-9]\d*$/m);
  t.regex(String(metrics.body), /^credfwd_earliest_credential_expiry_seconds \d+$/m);
  t.regex(String(metrics.body), /^# TYPE credfwd_sts_calls_total counter$/m);
  t.regex(String(metrics.body), /^# TYPE credfwd_handshake_refusals_total counter$/m);
  const health = await r1.admin.request('GET', '/healthz', undefined, null);
  t.is(health.status, 200);
  t.like(health.body as object, { redis: 'ok', replica: r1.replicaId });
});

test.serial('the admin API refuses a missing or wrong token with 401, a bad body with 400 and a code, an unknown cluster with 404', async (t) => {
  const { replicas: [replica] } = await startService(t, 1);
  const r = replica!;
  const noToken = await r.admin.request('GET', '/v1/clusters', undefined, null);
  t.is(noToken.status, 401);
  t.like(noToken.body as object, { code: 'ADMIN_AUTH_FAILED' });
  const wrong = await r.admin.request('POST', '/v1/clusters', { credentials: 'none' }, 'x'.repeat(43));
  t.is(wrong.status, 401);
  t.like(wrong.body as object, { code: 'ADMIN_AUTH_FAILED' });
  const notJson = await r.admin.request('POST', '/v1/clusters', undefined);
  t.is(notJson.status, 400);
  t.like(notJson.body as object, { code: 'USAGE' });
  const badShape = await r.admin.request('POST', '/v1/clusters', { credentials: 'none', workers: 'three' });
  t.is(badShape.status, 400);
  t.like(badShape.body as object, { code: 'USAGE' });
  const badEnviron = await r.admin.request('POST', '/v1/clusters', { credentials: 'none', environ: { '1BAD': 'x' } });
  t.is(badEnviron.status, 400);
  t.like(badEnviron.body as object, { code: 'ENV_NAME_INVALID' });
  const longTermKeys = await r.admin.request('POST', '/v1/clusters', { credentials: 'forward' });
  t.is(longTermKeys.status, 400, 'forward needs the launcher\'s temporary credentials, never its keys');
  for (const [method, path] of [['GET', '/v1/clusters/c-000000000000'], ['DELETE', '/v1/clusters/c-000000000000']] as const) {
    const unknown = await r.admin.request(method, path);
    t.is(unknown.status, 404);
    t.like(unknown.body as object, { code: 'CLUSTER_NOT_FOUND' });
  }
  const run = await r.admin.request('POST', '/v1/clusters/c-000000000000/run', { argv: ['true'] });
  t.is(run.status, 404);
  const method = await r.admin.request('PUT', '/v1/clusters');
  t.is(method.status, 405);
  const route = await r.admin.request('GET', '/v2/anything');
  t.is(route.status, 404);
  const huge = await r.admin.request('POST', '/v1/clusters', { credentials: 'none', environ: { BIG: 'x'.repeat(70_000) } });
  t.is(huge.status, 413);
});

test.serial('deleting a cluster closes its agents on every replica with 4403, they exit, and its join token is refused', async (t) => {
  const { replicas } = await startService(t, 2);
  const [r1, r2] = replicas as [ReplicaProcess, ReplicaProcess];
  const created = await r1.admin.createCluster({ credentials: 'none' });
  const ids = ['w1', 'w2', 'w3', 'w4'];
  const spawned = agents(t, created.joinString, ids);
  const joined = await allAcked(r1, created.id, ids, 0);
  t.is(new Set(joined.agents.map((a) => a.replicaId)).size, 2, 'agents on both replicas');

  await r2.admin.deleteCluster(created.id);
  for (const result of await Promise.all(spawned.map((a) => a.result))) {
    t.is(result.code, 0, 'a revoked agent exits cleanly');
    t.regex(result.stderr, /revoked this cluster/);
  }
  const late = spawnAgent(created.joinString, 'w-late');
  const refused = await late.result;
  t.not(refused.code, 0);
  t.regex(refused.stderr, /AGENT_AUTH_FAILED/);
  t.is((await r1.admin.request('GET', `/v1/clusters/${created.id}`)).status, 404);
  const refusals = await Promise.all([r1, r2].map(async (r) => {
    const text = String((await r.admin.request('GET', '/metrics', undefined, null)).body);
    return Number(/^credfwd_handshake_refusals_total\{code="4401"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  }));
  t.is(refusals[0]! + refusals[1]!, 1, 'the refused handshake is counted by close code');
});

test.serial('Redis holds no plaintext secret: every key under the prefix, of every type, is searched', async (t) => {
  const { prefix, secrets, replicas } = await startService(t, 2);
  const [r1, r2] = replicas as [ReplicaProcess, ReplicaProcess];
  const environSecret = `environ-secret-${Math.random().toString(36).slice(2)}`;
  const role = await r1.admin.createCluster({ credentials: `role:${ROLE_ARN}`, refreshIntervalSeconds: 2, durationSeconds: 900, environ: { DB_PASSWORD: environSecret } });
  const forwarded = {
    accessKeyId: 'ASIAFORWARDEDLAUNCHR',
    secretAccessKey: `forwarded-secret-${Math.random().toString(36).slice(2)}`,
    sessionToken: `forwarded-session-${Math.random().toString(36).slice(2)}`,
    expiration: new Date(Date.now() + 3_600_000).toISOString(),
  };
  const forward = await r2.admin.createCluster({ credentials: 'forward', forwardedCredentials: forwarded });
  agents(t, role.joinString, ['w1', 'w2']);
  agents(t, forward.joinString, ['f1']);
  await allAcked(r1, role.id, ['w1', 'w2'], 2);
  await allAcked(r2, forward.id, ['f1'], 1);

  const printed = await r2.admin.run(role.id, { argv: ['sh', '-c', 'echo "$AWS_SECRET_ACCESS_KEY $AWS_SESSION_TOKEN $DB_PASSWORD"'] });
  const minted = printed.flatMap((r) => r.stdout.trim().split(' '));
  t.is(minted.length, 6);
  t.true(minted.includes(environSecret), 'the workloads do get the secrets');
  const forwardedSeen = await r1.admin.run(forward.id, { argv: ['sh', '-c', 'echo "$AWS_SESSION_TOKEN"'] });
  t.is(forwardedSeen[0]?.stdout.trim(), forwarded.sessionToken);

  const dump = await dumpRedis(t.context.redis.url, prefix);
  t.true(dump.size > 5, 'the dump found the service\'s keys');
  const everything = [...dump].map(([key, value]) => `${key}\n${value}`).join('\n');
  const secretsToFind = {
    'minted secret key or session token': minted.filter((s) => s !== environSecret),
    'environ secret value': [environSecret],
    'forwarded secret key': [forwarded.secretAccessKey],
    'forwarded session token': [forwarded.sessionToken],
    'join token (role)': [parseJoinString(role.joinString).token],
    'join token (forward)': [parseJoinString(forward.joinString).token],
    'admin token': [secrets.adminToken],
    'state key': [secrets.stateKey],
    'TLS private key': ['PRIVATE KEY'],
  };
  for (const [what, values] of Object.entries(secretsToFind)) {
    for (const value of values) t.false(everything.includes(value), `Redis holds no ${what}`);
  }
});

test.serial('credfwd launch --coordinator: GetSessionToken on the launcher, only its session reaches the service and the workers, the cluster is deleted at the end', async (t) => {
  const { prefix, secrets, replicas: [replica] } = await startService(t, 1);
  const r = replica!;
  const launcher = await createIamUser(t.context.moto, 'carol');
  const before = t.context.sts.count('GetSessionToken');
  const result = await runCredfwd(
    ['launch', '--coordinator', r.url, '--workers', '2', '--json', '--', 'sh', '-c', 'echo "$AWS_ACCESS_KEY_ID $AWS_SESSION_TOKEN"'],
    isolatedEnv({
      AWS_ACCESS_KEY_ID: launcher.accessKeyId,
      AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey,
      AWS_ENDPOINT_URL_STS: t.context.sts.url,
      AWS_REGION: 'us-east-1',
      CREDFWD_ADMIN_TOKEN: secrets.adminToken,
      CREDFWD_COORDINATOR_PIN: `sha256:${r.pin}`,
    }),
  );
  t.is(result.code, 0, result.stderr);
  const lines = parseJsonLines(result.stdout);
  t.is(lines.length, 2);
  for (const line of lines) {
    const [keyId, sessionToken] = line.stdout.trim().split(' ');
    // Moto answers GetSessionToken with fixed example keys: what matters is that they are not the launcher's, and come with a session token.
    t.truthy(keyId);
    t.not(keyId, launcher.accessKeyId, 'workers act with a session, not the launcher key');
    t.truthy(sessionToken);
  }
  t.is(t.context.sts.count('GetSessionToken') - before, 1, 'one GetSessionToken, made by the launcher');
  const listed = await r.admin.request('GET', '/v1/clusters');
  t.deepEqual((listed.body as { clusters: unknown[] }).clusters, [], 'the cluster was deleted when the command finished');
  const everything = [...(await dumpRedis(t.context.redis.url, prefix)).values()].join('\n');
  t.false(everything.includes(launcher.secretAccessKey), 'the launcher\'s long-term secret never reached Redis');
  t.false(result.stderr.includes(launcher.secretAccessKey));

  const noPin = await runCredfwd(['launch', '--coordinator', r.url, '--', 'true'], isolatedEnv({ CREDFWD_ADMIN_TOKEN: secrets.adminToken }));
  t.is(noPin.code, 2);
  t.regex(noPin.stderr, /error\[USAGE\]: --coordinator needs the service's certificate pin/);
  const wrongPin = await runCredfwd(['launch', '--coordinator', r.url, '--credentials', 'none', '--', 'true'], isolatedEnv({ CREDFWD_ADMIN_TOKEN: secrets.adminToken, CREDFWD_COORDINATOR_PIN: `sha256:${'0'.repeat(64)}` }));
  t.is(wrongPin.code, 1);
  t.regex(wrongPin.stderr, /error\[COORDINATOR_PIN_MISMATCH\]/);
});

test.serial('credfwd serve refuses to start without its secrets, with a malformed state key, or without Redis; secrets are not options', async (t) => {
  const secrets = newServiceSecrets();
  const redisUrl = t.context.redis.url;
  const serve = (env: Record<string, string>, extra: string[] = []) => runCredfwd(['serve', '--listen', '127.0.0.1:0', ...extra], isolatedEnv(env));
  const noKey = await serve({ CREDFWD_ADMIN_TOKEN: secrets.adminToken, REDIS_URL: redisUrl });
  t.is(noKey.code, 2);
  t.regex(noKey.stderr, /^error\[CONFIG_INVALID\]: CREDFWD_STATE_KEY is not set\nhint: /);
  const malformed = await serve({ CREDFWD_STATE_KEY: 'too-short', CREDFWD_ADMIN_TOKEN: secrets.adminToken, REDIS_URL: redisUrl });
  t.is(malformed.code, 2);
  t.false(malformed.stderr.includes('too-short'), 'the key is not echoed');
  const noRedis = await serve({ CREDFWD_STATE_KEY: secrets.stateKey, CREDFWD_ADMIN_TOKEN: secrets.adminToken });
  t.is(noRedis.code, 2);
  t.regex(noRedis.stderr, /error\[USAGE\]: no Redis/);
  const inArgv = await serve({ CREDFWD_STATE_KEY: secrets.stateKey, REDIS_URL: redisUrl }, ['--admin-token', secrets.adminToken]);
  t.is(inArgv.code, 2);
  t.false(inArgv.stderr.includes(secrets.adminToken), 'an admin token put in argv is not echoed');
});

test.serial('refresh jobs: Throttling is retried with backoff until it passes; AccessDenied stops with needs-attention, not retried in a loop, until POST refresh', async (t) => {
  const { replicas } = await startService(t, 2);
  const [r1, r2] = replicas as [ReplicaProcess, ReplicaProcess];
  const role = (name: string): string => `arn:aws:iam::123456789012:role/${name}`;
  const forRole = (arn: string) => (p: URLSearchParams): boolean => p.get('RoleArn') === arn;
  const create = (arn: string) => r1.admin.createCluster({ credentials: `role:${arn}`, refreshIntervalSeconds: 1, durationSeconds: 900 });
  const [throttled, stuck, control] = await Promise.all([create(role('throttled')), create(role('stuck')), create(role('control'))]);
  const seqOf = async (id: string): Promise<number> => (await show(r2, id)).credentials?.seq ?? 0;

  const removeThrottling = t.context.sts.inject({ fault: STS_FAULTS.throttling, when: forRole(role('throttled')) });
  t.teardown(removeThrottling);
  const removeDenial = t.context.sts.inject({ fault: STS_FAULTS.accessDenied, when: forRole(role('stuck')) });
  t.teardown(removeDenial);

  const backingOff = await eventually(async () => {
    const shown = await show(r2, throttled.id);
    return shown.refresh?.state === 'backing-off' && shown.refresh.consecutiveFailures >= 2 ? shown : undefined;
  }, 30_000, 'throttled cluster backing off');
  t.like(backingOff.refresh?.lastError ?? {}, { code: 'STS_THROTTLED', retryable: true });
  const stuckShown = await eventually(async () => {
    const shown = await show(r2, stuck.id);
    return shown.refresh?.state === 'needs-attention' ? shown : undefined;
  }, 30_000, 'denied cluster needing attention');
  t.like(stuckShown.refresh?.lastError ?? {}, { code: 'STS_ACCESS_DENIED', retryable: false });

  // Time passes, measured by the control cluster's refreshes: the denied one asks STS no more.
  const deniedCalls = t.context.sts.count('AssumeRole', forRole(role('stuck')));
  const controlSeq = await seqOf(control.id);
  await eventually(async () => ((await seqOf(control.id)) >= controlSeq + 3 ? true : undefined), 30_000, 'control cluster refreshing');
  t.is(t.context.sts.count('AssumeRole', forRole(role('stuck'))), deniedCalls, 'AccessDenied is not retried in a loop');
  const stuckSeq = await seqOf(stuck.id);
  removeDenial();
  await r2.admin.refreshCluster(stuck.id);
  const resumed = await eventually(async () => {
    const shown = await show(r1, stuck.id);
    return (shown.credentials?.seq ?? 0) > stuckSeq ? shown : undefined;
  }, 30_000, 'denied cluster resumed by POST /refresh');
  t.like(resumed.refresh ?? {}, { state: 'scheduled', consecutiveFailures: 0 });

  const throttledSeq = await seqOf(throttled.id);
  removeThrottling();
  const recovered = await eventually(async () => {
    const shown = await show(r2, throttled.id);
    return (shown.credentials?.seq ?? 0) > throttledSeq ? shown : undefined;
  }, 30_000, 'throttled cluster recovering');
  t.like(recovered.refresh ?? {}, { state: 'scheduled', consecutiveFailures: 0 });
});
