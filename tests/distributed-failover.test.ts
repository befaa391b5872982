import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { spawnAgent, type SpawnedAgent } from './helpers/agents.ts';
import { freePort } from './helpers/free-port.ts';
import { startMoto, type Moto } from './helpers/moto.ts';
import { prefixFor, startPrivateServer } from './helpers/redis.ts';
import { eventually, newServiceSecrets, startReplica, type ReplicaProcess } from './helpers/replicas.ts';

interface Context { moto: Moto }
const test = anyTest as TestFn<Context>;

const ROLE_ARN = 'arn:aws:iam::123456789012:role/credfwd-failover';
/** The bound for agents of a killed replica to be back, on another replica, holding credentials. */
const FAILOVER_BOUND_MS = 5_000;

test.before(async (t) => {
  t.context = { moto: await startMoto() };
});

test.after.always(async (t) => {
  await t.context.moto?.stop();
});

async function startReplicas(t: ExecutionContext<Context>, redisUrl: string, count: number): Promise<ReplicaProcess[]> {
  const prefix = prefixFor(t.title).slice(0, -1);
  const secrets = newServiceSecrets();
  const env = { AWS_ACCESS_KEY_ID: 'AKIAREPLICAIDENTITY1', AWS_SECRET_ACCESS_KEY: 'replica-identity-secret', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_STS: t.context.moto.url };
  const first = await startReplica({ redisUrl, prefix, secrets, env });
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => startReplica({ redisUrl, prefix, secrets, env })));
  const replicas = [first, ...rest];
  t.teardown(() => Promise.all(replicas.map((r) => r.kill())));
  return replicas;
}

function startAgents(t: ExecutionContext<Context>, joinString: string, ids: string[]): SpawnedAgent[] {
  const spawned = ids.map((id) => spawnAgent(joinString, id));
  t.teardown(async () => {
    for (const a of spawned) a.child.kill('SIGKILL');
    await Promise.all(spawned.map((a) => a.result.catch(() => undefined)));
  });
  return spawned;
}

interface Shown {
  agents: Array<{ agentId: string; replicaId: string; ackedSeq: number }>;
  credentials: { seq: number; expiresAt: string } | null;
}

const show = async (replica: ReplicaProcess, clusterId: string): Promise<Shown> => await replica.admin.showCluster(clusterId) as unknown as Shown;

/** Resolves once every agent, on a replica other than `excluding`, has acknowledged the seq shown as current, at least `minSeq`. */
function allCurrent(replica: ReplicaProcess, clusterId: string, ids: string[], minSeq: number, deadlineMs: number, excluding?: string): Promise<Shown> {
  return eventually(async () => {
    const shown = await show(replica, clusterId);
    const seq = shown.credentials?.seq ?? 0;
    if (seq < minSeq) return undefined;
    const current = shown.agents.filter((a) => a.ackedSeq >= seq && a.replicaId !== excluding).map((a) => a.agentId);
    return ids.every((id) => current.includes(id)) ? shown : undefined;
  }, deadlineMs, `agents ${ids.join(',')} current at seq ≥ ${minSeq}`);
}

/** Resolves when the agent's log shows a line matching `pattern`. */
function logLine(agent: SpawnedAgent, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    const onData = (chunk: string): void => {
      seen += chunk;
      if (!pattern.test(seen)) return;
      agent.child.stderr?.off('data', onData);
      resolve();
    };
    agent.child.stderr?.on('data', onData);
  });
}

test.serial('kill -9 a replica: its agents are back on another within 5 s with credentials, get the next refresh, and a running command completes', async (t) => {
  const redis = await startPrivateServer();
  t.teardown(() => redis.stop());
  const replicas = await startReplicas(t, redis.url, 3);
  const created = await replicas[0]!.admin.createCluster({ credentials: `role:${ROLE_ARN}`, refreshIntervalSeconds: 3, durationSeconds: 900 });
  const ids = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
  const agents = startAgents(t, created.joinString, ids);
  const before = await allCurrent(replicas[0]!, created.id, ids, 1, 30_000);

  // The victim holds agents; commands go through a survivor, as a load balancer would send them after the crash.
  const victimId = before.agents.map((a) => a.replicaId).sort((a, b) => before.agents.filter((x) => x.replicaId === b).length - before.agents.filter((x) => x.replicaId === a).length)[0]!;
  const victim = replicas.find((r) => r.replicaId === victimId)!;
  const survivor = replicas.find((r) => r !== victim)!;
  const orphans = before.agents.filter((a) => a.replicaId === victimId).map((a) => a.agentId);
  t.true(orphans.length > 0);

  const started = Promise.all(agents.map((a) => logLine(a, /"msg":"task started"/)));
  // Longer than the agent port's 5 s idle timeout, which an admin request waiting on a run must outlive.
  const running = survivor.admin.run(created.id, { argv: ['sh', '-c', 'echo "started $AWS_ACCESS_KEY_ID"; sleep 6; echo "finished $AWS_ACCESS_KEY_ID"'] });
  await started;

  const killedAt = Date.now();
  await victim.kill();
  await eventually(async () => {
    const shown = await show(survivor, created.id);
    const moved = shown.agents.filter((a) => a.replicaId !== victimId && orphans.includes(a.agentId) && a.ackedSeq >= 1);
    return orphans.every((id) => moved.some((a) => a.agentId === id)) ? true : undefined;
  }, FAILOVER_BOUND_MS + 2_000, 'orphaned agents back on a survivor');
  const failoverMs = Date.now() - killedAt;
  t.log(`agents of the killed replica were back, holding credentials, ${failoverMs} ms after the kill`);
  t.true(failoverMs <= FAILOVER_BOUND_MS, `failover took ${failoverMs} ms`);

  const results = await running;
  t.deepEqual(results.map((r) => r.worker), ids, 'every worker reports, those of the killed replica included');
  for (const r of results) {
    t.is(r.exitCode, 0, `${r.worker}: ${r.stderr}`);
    // Output in flight through the killed replica at the moment of the kill is lost; what follows, and the exit, are not.
    t.regex(r.stdout, orphans.includes(r.worker) ? /(^|\n)finished ASIA\w+\n$/ : /^started ASIA\w+\nfinished ASIA\w+\n$/, `${r.worker} ran with credentials to the end`);
  }

  const seqAtFailover = (await show(survivor, created.id)).credentials?.seq ?? 0;
  // Refreshes every 3 s: the next one reaches everyone well within this bound, whoever mints it.
  const after = await allCurrent(survivor, created.id, ids, seqAtFailover + 1, 15_000, victimId);
  t.true(new Date(after.credentials!.expiresAt).getTime() > Date.now());
  const keys = await survivor.admin.run(created.id, { argv: ['sh', '-c', 'echo "$AWS_ACCESS_KEY_ID"'] });
  t.deepEqual(keys.map((r) => r.worker), ids);
  t.is(new Set(keys.map((r) => r.stdout.trim())).size, 1, 'every worker holds the same, current, credentials');
});

test.serial('Redis restart (append-only file): no cluster is lost, /healthz reports the outage, replicas and agents recover and refreshes go on', async (t) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-redis-'));
  let redis = await startPrivateServer({ port, dir });
  t.teardown(() => redis.stop());
  const replicas = await startReplicas(t, redis.url, 2);
  const [r1, r2] = replicas as [ReplicaProcess, ReplicaProcess];
  const created = await r1.admin.createCluster({ credentials: `role:${ROLE_ARN}`, refreshIntervalSeconds: 2, durationSeconds: 900 });
  const ids = ['w1', 'w2', 'w3', 'w4'];
  startAgents(t, created.joinString, ids);
  const before = await allCurrent(r2, created.id, ids, 2, 30_000);

  await redis.stop();
  const down = await eventually(async () => {
    const health = await r1.admin.request('GET', '/healthz', undefined, null);
    return health.status === 503 ? health : undefined;
  }, 10_000, '/healthz reporting Redis down');
  t.like(down.body as object, { redis: 'unreachable' });

  redis = await startPrivateServer({ port, dir });
  for (const replica of replicas) {
    await eventually(async () => ((await replica.admin.request('GET', '/healthz', undefined, null)).status === 200 ? true : undefined), 15_000, 'Redis back');
  }
  const listed = await r2.admin.request('GET', '/v1/clusters');
  t.deepEqual((listed.body as { clusters: Array<{ id: string }> }).clusters.map((c) => c.id), [created.id], 'the cluster survived the restart');
  const after = await allCurrent(r1, created.id, ids, before.credentials!.seq + 2, 30_000);
  t.true(new Date(after.credentials!.expiresAt).getTime() > Date.now(), 'credentials current, never past expiry');
});

test.serial('SIGTERM on a replica: it leaves the service without revoking anything; its agents move to another replica and keep running', async (t) => {
  const redis = await startPrivateServer();
  t.teardown(() => redis.stop());
  const [r1, r2] = await startReplicas(t, redis.url, 2) as [ReplicaProcess, ReplicaProcess];
  const created = await r1.admin.createCluster({ credentials: 'none' });
  const ids = ['w1', 'w2', 'w3', 'w4'];
  const agents = startAgents(t, created.joinString, ids);
  const before = await allCurrent(r2, created.id, ids, 0, 30_000);
  t.is(new Set(before.agents.map((a) => a.replicaId)).size, 2);

  await r1.service.stop();
  await allCurrent(r2, created.id, ids, 0, 10_000, r1.replicaId);
  t.true(agents.every((a) => a.child.exitCode === null && a.child.signalCode === null), 'no agent exited');
  const results = await r2.admin.run(created.id, { argv: ['true'] });
  t.deepEqual(results.map((r) => [r.worker, r.exitCode]), ids.map((id) => [id, 0]));
});
