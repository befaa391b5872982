import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { AdminClient } from '@credfwd/coordinator';
import { Replica } from '@credfwd/coordinator/service';
import { spawnAgent } from './helpers/agents.ts';
import { capturedLogger, type CapturedLogger } from './helpers/captured-logger.ts';
import { CREDFWD_BIN, isolatedEnv, runCredfwd, spawnNode } from './helpers/credfwd-cli.ts';
import { startMoto, type Moto } from './helpers/moto.ts';
import { collectOutput, descendantPids, isRunning, type ProcessResult } from './helpers/processes.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { dumpRedis, eventually, startReplicaSet, type ReplicaProcess, type ReplicaSet } from './helpers/replicas.ts';

interface Context { redis: TestRedis; moto: Moto }
const test = anyTest as TestFn<Context>;

const ROLE = 'role:arn:aws:iam::123456789012:role/credfwd-lease';
/** The replicas' own AWS identity: they mint roles with it. Moto accepts any signature. */
const REPLICA_IDENTITY = { AWS_ACCESS_KEY_ID: 'AKIAREPLICALEASE0001', AWS_SECRET_ACCESS_KEY: 'replica-lease-secret', AWS_REGION: 'us-east-1' };
/** The workload of every launched cluster: long enough that only a stop ends it. */
const WORKLOAD = ['sleep', '10006'];
/** The message a replica logs at warn when it deletes a cluster whose lease lapsed (lease-sweep.ts). */
const LAPSE_MESSAGE = 'cluster deleted: its lease lapsed';
/** BullMQ's layout under the service prefix, as `credfwd serve` makes it (distributed-refresh.ts, redis-keys.ts). */
const QUEUE = 'refresh';
const JOB_STATES = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

test.before(async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  t.context = { redis, moto };
});

test.after.always(async (t) => {
  await Promise.all([t.context.moto?.stop(), t.context.redis?.stop()]);
});

function startService(t: ExecutionContext<Context>, count: number): Promise<ReplicaSet> {
  return startReplicaSet(t, t.context.redis.url, count, { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: t.context.moto.url });
}

interface Launcher {
  child: ChildProcess;
  result: Promise<ProcessResult>;
  clusterId: string;
  /** The launcher's local agents and workloads, found while they ran. */
  descendants: number[];
  /** The pids running the workload itself. */
  workloads: number[];
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Runs the real CLI, `credfwd launch --coordinator URL ARGS -- sleep 10006`,
 * with the admin token and pin in the environment as users pass them, and
 * resolves once its cluster exists on the service and its workload runs.
 */
async function launch(t: ExecutionContext<Context>, service: ReplicaSet, args: string[]): Promise<Launcher> {
  const replica = service.replicas[0]!;
  const child = spawnNode(CREDFWD_BIN, ['launch', '--coordinator', replica.url, '--credentials', ROLE, '--refresh-interval', '1s', ...args, '--', ...WORKLOAD], isolatedEnv({
    AWS_REGION: 'us-east-1',
    CREDFWD_ADMIN_TOKEN: service.secrets.adminToken,
    CREDFWD_COORDINATOR_PIN: `sha256:${replica.pin}`,
  }));
  const result = collectOutput(child);
  const seen = new Set<number>();
  t.teardown(async () => {
    child.kill('SIGKILL');
    for (const pid of seen) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    await result.catch(() => undefined);
  });
  const clusterId = await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the launcher exited (${child.exitCode}) before its cluster was up: ${(await result).stderr}`);
    const listed = await replica.admin.request('GET', '/v1/clusters');
    return (listed.body as { clusters: Array<{ id: string }> }).clusters[0]?.id;
  }, 30_000, 'the launcher\'s cluster on the service');
  const workloads = await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the launcher exited (${child.exitCode}) before its workload ran: ${(await result).stderr}`);
    for (const pid of descendantPids(child.pid!)) seen.add(pid);
    const running = [...seen].filter((pid) => commandLine(pid).join(' ') === WORKLOAD.join(' '));
    return running.length > 0 ? running : undefined;
  }, 30_000, 'the workload running under the launcher');
  return { child, result, clusterId, descendants: [...seen], workloads };
}

/** SIGKILL, as a crash or an OOM kill would; resolves once the launcher is gone. */
async function killHard(launcher: Launcher): Promise<void> {
  launcher.child.kill('SIGKILL');
  await launcher.result;
}

interface ShownLease { seconds: number; expiresAt: string | null }

/** A cluster's status, or undefined once the service answers 404. */
async function show(replica: ReplicaProcess | AdminClient, clusterId: string): Promise<{ lease: ShownLease | null; credentials: { seq: number } | null } | undefined> {
  const admin = replica instanceof AdminClient ? replica : replica.admin;
  const answer = await admin.request('GET', `/v1/clusters/${clusterId}`);
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw new Error(`GET cluster ${clusterId} answered ${answer.status}`);
  return answer.body as { lease: ShownLease | null; credentials: { seq: number } | null };
}

/** Resolves once the service answers 404 for the cluster. */
function gone(admin: ReplicaProcess | AdminClient, clusterId: string, deadlineMs: number, what: string): Promise<true> {
  return eventually(async () => ((await show(admin, clusterId)) === undefined ? true : undefined), deadlineMs, what);
}

/** Whatever of a cluster is still in Redis under the prefix: key names, values, BullMQ jobs in any state. */
async function leftovers(redisUrl: string, prefix: string, clusterId: string): Promise<string[]> {
  const found: string[] = [];
  // BullMQ's event stream is a log of what happened (job ids included), capped by BullMQ; it holds no job.
  const eventLog = `${prefix}:bull:${QUEUE}:events`;
  for (const [key, value] of await dumpRedis(redisUrl, prefix)) {
    if (key.includes(clusterId)) found.push(`key ${key}`);
    else if (key !== eventLog && value.includes(clusterId)) found.push(`a value in ${key}`);
  }
  const queue = new Queue(QUEUE, { connection: { url: redisUrl }, prefix: `${prefix}:bull` });
  try {
    for (const job of await queue.getJobs([...JOB_STATES])) {
      if ((job.data as { clusterId?: string }).clusterId === clusterId) found.push(`job ${job.id} (${await job.getState()})`);
    }
  } finally {
    await queue.close();
  }
  return found;
}

/** Resolves once nothing of the cluster is left in Redis; fails naming what is left. */
async function nothingLeft(t: ExecutionContext<Context>, prefix: string, clusterId: string): Promise<void> {
  let last: string[] = [];
  try {
    await eventually(async () => {
      last = await leftovers(t.context.redis.url, prefix, clusterId);
      return last.length === 0 ? true : undefined;
    }, 15_000, `nothing of ${clusterId} left in Redis`);
  } catch (err) {
    t.fail(`${(err as Error).message}; left: ${last.join(', ')}`);
  }
}

/** Log lines (pino JSON) whose message starts with `message`. */
function logLines(text: string, message: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => typeof line.msg === 'string' && line.msg.startsWith(message));
}

test.serial('credfwd launch --coordinator, then kill -9 the launcher: the lease lapses, the service deletes the cluster, its agent and workload stop, nothing is left in Redis', async (t) => {
  const service = await startService(t, 1);
  const replica = service.replicas[0]!;
  const launcher = await launch(t, service, ['--lease', '3s']);
  const shown = await show(replica, launcher.clusterId);
  t.is(shown?.lease?.seconds, 3, 'the cluster holds the lease the launcher asked for');
  t.true(Date.parse(shown?.lease?.expiresAt ?? '') > Date.now(), 'and its expiry is reported, in the future');
  t.truthy(await leftovers(t.context.redis.url, service.prefix, launcher.clusterId).then((l) => l.find((what) => what.startsWith('job '))), 'the probe sees the refresh job while the cluster lives');

  await killHard(launcher);
  const killedAt = Date.now();
  // Lease 3 s, renewed every second until the kill; a sweep every second: 15 s is a bound, not a wait.
  await gone(replica, launcher.clusterId, 15_000, 'the service deletes the cluster whose lease lapsed');
  t.true(Date.now() - killedAt >= 1_000, 'not before the lease could lapse');
  t.deepEqual(await eventually(async () => (launcher.descendants.some(isRunning) ? undefined : []), 15_000, 'the launcher\'s agents and workloads stop'), []);
  t.false(launcher.workloads.some(isRunning), 'the workload is gone');
  await nothingLeft(t, service.prefix, launcher.clusterId);

  const lapses = logLines(replica.service.output(), LAPSE_MESSAGE);
  t.is(lapses.length, 1, 'the replica logs the lapsed deletion once');
  t.like(lapses[0] ?? {}, { level: 40, clusterId: launcher.clusterId, leaseSeconds: 3 });
  t.true(typeof lapses[0]?.sinceRenewalSeconds === 'number' && lapses[0].sinceRenewalSeconds >= 3, 'with how long since the last renewal');
  t.false(replica.service.output().includes(service.secrets.adminToken), 'no admin token in the replica log');
  t.false((await launcher.result).stderr.includes(service.secrets.adminToken), 'no admin token in the launcher output');
});

test.serial('a launcher that runs renews its lease: the cluster outlives five lease periods, and a normal exit deletes it at once', async (t) => {
  const service = await startService(t, 1);
  const replica = service.replicas[0]!;
  const launcher = await launch(t, service, ['--lease', '2s']);
  const expiries = new Set<string>();
  const started = Date.now();
  await eventually(async () => {
    const shown = await show(replica, launcher.clusterId);
    if (!shown) throw new Error(`cluster ${launcher.clusterId} was deleted while its launcher ran (after ${Date.now() - started} ms)`);
    if (shown.lease?.expiresAt) expiries.add(shown.lease.expiresAt);
    return Date.now() - started >= 5 * 2_000 ? true : undefined;
  }, 30_000, 'five lease periods with the launcher running');
  t.true(expiries.size >= 5, `the lease was renewed again and again (saw ${expiries.size} expiries)`);
  t.true(launcher.workloads.every(isRunning), 'the workload still runs');

  // Ctrl-C: the launcher deletes its cluster on the way out, and exits without waiting for the run's
  // 30 s lost-agent allowance (LOST_AGENT_MS): the replica ends the runs of a deleted cluster.
  launcher.child.kill('SIGINT');
  await gone(replica, launcher.clusterId, 10_000, 'the launcher deletes its cluster on Ctrl-C');
  const exited = await Promise.race([launcher.result, delay(15_000, undefined, { ref: false })]);
  t.is(exited?.code, 130, 'the launcher exits 130 on Ctrl-C, well before LOST_AGENT_MS');
  const deletions = logLines(replica.service.output(), 'cluster deleted').map((line) => [line.level, line.clusterId, line.msg]);
  t.deepEqual(deletions, [[30, launcher.clusterId, 'cluster deleted']], 'deleted by its launcher (DELETE), not by a lapse');
  await nothingLeft(t, service.prefix, launcher.clusterId);
});

test.serial('--keep: the cluster has no lease, survives its launcher\'s kill -9 past a lapse sweep, and only DELETE removes it, leaving nothing in Redis', async (t) => {
  const service = await startService(t, 1);
  const replica = service.replicas[0]!;
  const launcher = await launch(t, service, ['--keep']);
  t.is((await show(replica, launcher.clusterId))?.lease, null, 'a kept cluster reports no lease');
  const renewed = await replica.admin.request('POST', `/v1/clusters/${launcher.clusterId}/lease`);
  t.is(renewed.status, 200);
  t.deepEqual(renewed.body, { lease: null }, 'renewing a kept cluster is harmless and says there is no lease');
  await killHard(launcher);

  // A short-leased cluster created now lapses: once the sweep has deleted it, the kept one has been swept past too.
  const control = await replica.admin.createCluster({ credentials: 'none', leaseSeconds: 2 });
  t.is(control.lease?.seconds, 2);
  await gone(replica, control.id, 15_000, 'the short-leased control cluster lapses');
  t.truthy(await show(replica, launcher.clusterId), 'the kept cluster is still on the service');
  t.deepEqual(logLines(replica.service.output(), LAPSE_MESSAGE).map((line) => line.clusterId), [control.id], 'only the control cluster lapsed');

  await replica.admin.deleteCluster(launcher.clusterId);
  t.is(await show(replica, launcher.clusterId), undefined);
  await nothingLeft(t, service.prefix, launcher.clusterId);
  await nothingLeft(t, service.prefix, control.id);
});

test.serial('DELETE by hand leaves no refresh job and no key behind; the agent is revoked; renewing or deleting again answers 404', async (t) => {
  const service = await startService(t, 1);
  const replica = service.replicas[0]!;
  const created = await replica.admin.createCluster({ credentials: ROLE, refreshIntervalSeconds: 1, durationSeconds: 900 });
  const agent = spawnAgent(created.joinString, 'w1');
  t.teardown(async () => {
    agent.child.kill('SIGKILL');
    await agent.result.catch(() => undefined);
  });
  await eventually(async () => ((await show(replica, created.id))?.credentials?.seq ?? 0) >= 3 || undefined, 30_000, 'several refreshes done');
  const before = await leftovers(t.context.redis.url, service.prefix, created.id);
  t.truthy(before.find((what) => what.startsWith('job ')), `the probe sees the refresh job (${before.join(', ')})`);
  t.truthy(before.find((what) => what.includes(':leases')), 'and the lease');

  await replica.admin.deleteCluster(created.id);
  await nothingLeft(t, service.prefix, created.id);
  const exited = await agent.result;
  t.not(exited.code, null, 'the revoked agent exits');
  const renew = await replica.admin.request('POST', `/v1/clusters/${created.id}/lease`);
  t.is(renew.status, 404);
  t.like(renew.body as object, { code: 'CLUSTER_NOT_FOUND' });
  t.is((await replica.admin.request('DELETE', `/v1/clusters/${created.id}`)).status, 404, 'a second DELETE finds nothing');
  const tooShort = await replica.admin.request('POST', '/v1/clusters', { credentials: 'none', leaseSeconds: 1 });
  t.is(tooShort.status, 400, 'a lease shorter than the minimum is refused');
  t.like(tooShort.body as object, { code: 'USAGE' });
});

test.serial('admin API lease: renewals through POST /lease hold a cluster, and once they stop the lapse revokes its joined agent with 4403', async (t) => {
  const service = await startService(t, 2);
  const [r1, r2] = service.replicas as [ReplicaProcess, ReplicaProcess];
  const created = await r1.admin.createCluster({ credentials: ROLE, refreshIntervalSeconds: 1, durationSeconds: 900, leaseSeconds: 3 });
  t.is(created.lease?.seconds, 3);
  const agent = spawnAgent(created.joinString, 'w1');
  t.teardown(async () => {
    agent.child.kill('SIGKILL');
    await agent.result.catch(() => undefined);
  });
  // Renewed on either replica as the agent joins and well past the lease: the cluster stays.
  const started = Date.now();
  let renewals = 0;
  await eventually(async () => {
    const renewed = await (renewals % 2 === 0 ? r1 : r2).admin.renewLease(created.id);
    renewals += 1;
    t.is(renewed.lease?.seconds, 3);
    const shown = await show(r2, created.id);
    if (!shown) throw new Error('the cluster was deleted while its lease was renewed');
    const joined = ((await r2.admin.showCluster(created.id)).agents as Array<{ agentId: string }>).some((a) => a.agentId === 'w1');
    return joined && Date.now() - started >= 2 * 3_000 ? true : undefined;
  }, 30_000, 'the agent joined and two lease periods passed under renewal');

  await gone(r1, created.id, 15_000, 'the cluster whose renewals stopped lapses');
  const exited = await agent.result;
  t.is(exited.code, 0, 'the revoked agent exits cleanly');
  t.regex(exited.stderr, /revoked this cluster/);
  const lapses = service.replicas.flatMap((r) => logLines(r.service.output(), LAPSE_MESSAGE));
  t.deepEqual(lapses.map((line) => line.clusterId), [created.id], 'one replica deleted it, once');
  await nothingLeft(t, service.prefix, created.id);
});

test.serial('two replicas racing the lapse sweep: each lapsed cluster is deleted exactly once and leaves nothing behind', async (t) => {
  // In-process replicas, so each can sweep every 10 ms: the two sweeps meet on every lapsed cluster.
  process.env.AWS_ACCESS_KEY_ID = REPLICA_IDENTITY.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = REPLICA_IDENTITY.AWS_SECRET_ACCESS_KEY;
  process.env.AWS_REGION = REPLICA_IDENTITY.AWS_REGION;
  process.env.AWS_ENDPOINT_URL_STS = t.context.moto.url;
  const prefix = prefixFor(t.title).slice(0, -1);
  const secrets = { stateKey: randomBytes(32), adminToken: randomBytes(32).toString('base64url') };
  const logs: CapturedLogger[] = [capturedLogger(), capturedLogger()];
  const replicas: Replica[] = [];
  t.teardown(() => Promise.all(replicas.map((r) => r.close())));
  for (const log of logs) {
    replicas.push(await Replica.start({ logger: log.logger, listen: '127.0.0.1:0', redisUrl: t.context.redis.url, redisPrefix: prefix, secrets, leaseSweepMs: 10 }));
  }
  const admin = new AdminClient({ url: `https://${replicas[0]!.address}`, pin: replicas[0]!.pin, adminToken: secrets.adminToken });
  const created = await Promise.all(Array.from({ length: 8 }, (_, i) => admin.createCluster(i % 2 === 0
    ? { credentials: ROLE, refreshIntervalSeconds: 1, durationSeconds: 900, leaseSeconds: 2 }
    : { credentials: 'none', leaseSeconds: 2 })));
  const ids = created.map((c) => c.id).sort();
  for (const id of ids) await gone(admin, id, 20_000, `cluster ${id} lapses`);

  const lapses = logs.flatMap((log) => logLines(log.text(), LAPSE_MESSAGE)).map((line) => line.clusterId as string).sort();
  t.deepEqual(lapses, ids, 'one lapse deletion per cluster across both replicas');
  for (const id of ids) await nothingLeft(t, prefix, id);
  const redis = new Redis(t.context.redis.url);
  t.teardown(() => redis.disconnect());
  t.is(await redis.scard(`${prefix}:clusters`), 0);
  t.is(await redis.zcard(`${prefix}:leases`), 0);
});

test.serial('--lease and --keep are checked before anything starts: out of range, together, or without --coordinator is a usage error', async (t) => {
  const env = isolatedEnv({ CREDFWD_ADMIN_TOKEN: 'x'.repeat(43), CREDFWD_COORDINATOR_PIN: `sha256:${'0'.repeat(64)}` });
  // Port 9 (discard) is never dialled: each is refused before the launcher reaches out.
  const coordinator = ['--coordinator', 'https://127.0.0.1:9'];
  for (const [args, message] of [
    [[...coordinator, '--lease', '1s'], /--lease "1s" is out of range/],
    [[...coordinator, '--lease', ''], /--lease "" is not a duration/],
    [[...coordinator, '--lease', '5m', '--keep'], /--lease and --keep contradict each other/],
    [['--keep'], /--lease and --keep apply to clusters on a service/],
  ] as const) {
    const result = await runCredfwd(['launch', '--credentials', 'none', ...args, '--', 'true'], env);
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, new RegExp(`error\\[USAGE\\]: ${message.source}`));
  }
});
