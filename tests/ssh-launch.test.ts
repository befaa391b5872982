import type { ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Coordinator, defaultAgentProgram, type ClusterOptions, type ClusterRecord, type CredfwdError } from '@credfwd/coordinator';
import { parseJoinString } from '@credfwd/shared';
import { SshBackend, type SshAgents } from '../packages/coordinator/src/backends/ssh/index.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { assumeRoleViaCli, createIamUser } from './helpers/moto.ts';
import { startService } from './helpers/service.ts';
import { leftoverProcesses, localSshProcesses, pollUntil, processTexts } from './helpers/ssh-hosts.ts';
import { sshHostsFixture, sshSuite, type SshHostsContext } from './helpers/ssh-suite.ts';

interface Context extends SshHostsContext {
  agentFile: string;
}

// Never a silent pass: without root or sshd every test is skipped with the reason in its title.
const suite = sshSuite<Context>();
const { base, unavailable, test, title } = suite;
sshHostsFixture(suite, { scratch: 'credfwd-ssh-test-' });

const ROLE_ARN = 'arn:aws:iam::123456789012:role/launcher';
const READY_MS = 30_000;
const LEFTOVER_MS = 10_000;

if (!unavailable) {
  base.serial.before((t) => {
    // The coordinator stays on loopback, reached only through the tunnels; moto is where every host reaches it.
    process.env.AWS_ENDPOINT_URL_STS = t.context.moto.url;
    // What `pnpm build` made and `credfwd launch --hosts` uploads: AGENT_BUNDLE_MISSING says to build first.
    t.context.agentFile = defaultAgentProgram().file;
  });
}

interface Launched {
  coordinator: Coordinator;
  record: ClusterRecord;
  agents: SshAgents;
  /** Revokes the cluster, stops the agents and the coordinator. Idempotent. */
  close(): Promise<void>;
}

interface LaunchChoices {
  workersPerHost?: number;
  /** Agents dial the coordinator's own address, which then listens where the hosts reach it. */
  direct?: boolean;
  workerEnv?: Record<string, string>;
}

async function launch(t: ExecutionContext<Context>, cluster: ClusterOptions, choices: LaunchChoices = {}): Promise<Launched> {
  const { logger } = capturedLogger();
  const coordinator = await Coordinator.start({ logger, listen: `${choices.direct ? t.context.hosts.serviceAddress : '127.0.0.1'}:0` });
  let record: ClusterRecord | undefined;
  let agents: SshAgents | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= (async () => {
    if (record) coordinator.closeCluster(record.id);
    await agents?.stop();
    await coordinator.close();
  })());
  t.teardown(close);
  record = await coordinator.createCluster({ region: 'us-east-1', environ: { AWS_ENDPOINT_URL: t.context.moto.url }, ...cluster });
  agents = await new SshBackend({
    hosts: t.context.hosts.hosts.map((h) => h.alias),
    ssh: { configFile: t.context.hosts.configFile },
    program: defaultAgentProgram(),
    ...(choices.workersPerHost ? { workersPerHost: choices.workersPerHost } : {}),
  }).start({
    clusterId: record.id,
    joinString: record.joinString,
    coordinatorAddress: coordinator.address,
    direct: choices.direct ?? false,
    logger,
    ...(choices.workerEnv ? { workerEnv: choices.workerEnv } : {}),
  });
  await untilReady(coordinator, record.id, agents.workers.map((w) => w.agentId));
  return { coordinator, record, agents, close };
}

function untilReady(coordinator: Coordinator, clusterId: string, ids: string[]): Promise<void> {
  const waiting = new Set(ids.filter((id) => !coordinator.hub.readyAgents(clusterId).includes(id)));
  const ready = new Promise<void>((resolve) => {
    const onReady = (cluster: string, agentId: string): void => {
      if (cluster === clusterId) waiting.delete(agentId);
      if (waiting.size === 0) {
        coordinator.hub.off('agent-ready', onReady);
        resolve();
      }
    };
    coordinator.hub.on('agent-ready', onReady);
    onReady(clusterId, '');
  });
  return within(ready, READY_MS, `agents never ready: ${[...waiting].join(', ')}`);
}

function launcherFrom(keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }): NonNullable<ClusterOptions['launcher']> {
  return async () => keys;
}

/** Waits until `count` workloads said they started by creating a file in `dir` (the hosts share this filesystem). */
function untilStarted(dir: string, count: number): Promise<void> {
  return pollUntil(async () => (await readdir(dir)).length >= count, READY_MS, `${count} workloads never started`);
}

async function assertNothingLeft(t: ExecutionContext<Context>): Promise<void> {
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, LEFTOVER_MS), [], 'processes left on the hosts');
}

test(title('forward mode across 3 hosts: aws sts get-caller-identity on each host is the launcher\'s session, through tunnels to a loopback coordinator'), async (t) => {
  const user = await createIamUser(t.context.moto, 'ssh-alice');
  const session = await assumeRoleViaCli(t.context.moto, user, ROLE_ARN, 'alice-laptop', 3600);
  const started = Date.now();
  const cluster = await launch(t, { credentials: 'forward', launcher: launcherFrom(session) });
  t.log(`3 hosts ready in ${Date.now() - started} ms`);
  t.true(cluster.coordinator.address.startsWith('127.0.0.1:'), 'hosts cannot reach this loopback but through their tunnel');
  t.deepEqual(cluster.agents.workers.map((w) => w.host), ['h1', 'h2', 'h3']);
  const results = await cluster.coordinator.run(cluster.record.id, ['aws', 'sts', 'get-caller-identity', '--output', 'json']);
  t.is(results.length, 3);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    t.is((JSON.parse(r.stdout) as { Arn: string }).Arn, 'arn:aws:sts::123456789012:assumed-role/launcher/alice-laptop');
  }
  await cluster.close();
  await assertNothingLeft(t);
});

test(title('the launcher\'s secret key is in no process on any host and the join token in no argv, here or there'), async (t) => {
  const user = await createIamUser(t.context.moto, 'ssh-bob');
  const cluster = await launch(t, { credentials: 'forward', launcher: launcherFrom(user) });
  const joinToken = parseJoinString(cluster.record.joinString).token;
  const dir = await mkdtemp(join(t.context.scratch, 'hold-'));
  // Each workload proves its identity, says it started, then holds until released, so the scan sees workloads too.
  const running = cluster.coordinator.run(cluster.record.id, ['sh', '-c', `aws sts get-caller-identity --output json && mktemp ${dir}/started.XXXXXX >/dev/null && while [ ! -e ${dir}/release ]; do sleep 0.1; done`]);
  await untilStarted(dir, 3);

  const scanned = [];
  for (const host of t.context.hosts.hosts) {
    for (const pid of [host.sshdPid, ...await host.processes()]) {
      const texts = await processTexts(pid);
      if (texts) scanned.push({ host: host.alias, ...texts });
    }
  }
  const agentsSeen = scanned.filter((p) => p.cmdline.includes('join\0--stdin'));
  t.is(agentsSeen.length, 3, 'one agent per host scanned');
  t.true(scanned.some((p) => p.environ.includes('AWS_SESSION_TOKEN=')), 'workloads holding minted credentials were scanned');
  for (const p of scanned) {
    t.false(p.cmdline.includes(user.secretAccessKey) || p.environ.includes(user.secretAccessKey), `launcher secret in ${p.host} pid ${p.pid}`);
    t.false(p.cmdline.includes(joinToken) || p.environ.includes(joinToken), `join token in ${p.host} pid ${p.pid}`);
  }
  const localSsh = await localSshProcesses(t.context.hosts.configFile);
  t.is(localSsh.length, 3, 'one ssh session per agent here');
  for (const p of localSsh) t.false(p.cmdline.includes(joinToken) || p.environ.includes(user.secretAccessKey), `secret in ssh pid ${p.pid}`);

  await writeFile(join(dir, 'release'), '');
  const results = await within(running, READY_MS, 'released workloads never finished');
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    t.not((JSON.parse(r.stdout) as { Arn: string }).Arn, user.arn, 'workers act with minted session credentials, not the launcher key');
    t.false(r.stdout.includes(user.secretAccessKey));
  }
  await cluster.close();
  await assertNothingLeft(t);
});

test(title('the agent is uploaded once: the second launch finds it by hash and skips the upload'), async (t) => {
  for (const host of t.context.hosts.hosts) await rm(host.cacheDir, { recursive: true, force: true });
  const sha256 = createHash('sha256').update(await readFile(t.context.agentFile)).digest('hex');
  const first = await launch(t, { credentials: null });
  t.deepEqual(first.agents.hosts.map((h) => h.agent), ['uploaded', 'uploaded', 'uploaded']);
  for (const host of t.context.hosts.hosts) {
    const { mode } = await stat(join(host.cacheDir, 'credfwd', `agent-${sha256}.mjs`));
    t.is(mode & 0o777, 0o600, `agent on ${host.alias} is private to the remote user`);
  }
  await first.close();
  const second = await launch(t, { credentials: null });
  t.deepEqual(second.agents.hosts.map((h) => h.agent), ['cached', 'cached', 'cached']);
  await second.close();
  await assertNothingLeft(t);
});

test(title('terminate() ends every session at once: agents and their workloads stop on every host'), async (t) => {
  const cluster = await launch(t, { credentials: null }, { workersPerHost: 2 });
  t.is(cluster.agents.workers.length, 6);
  const dir = await mkdtemp(join(t.context.scratch, 'bg-'));
  // A background child that outlives its shell is part of the task and must stop with it.
  const running = cluster.coordinator.run(cluster.record.id, ['sh', '-c', `sleep 300 & mktemp ${dir}/started.XXXXXX >/dev/null; wait`]);
  await untilStarted(dir, 6);
  cluster.agents.terminate();
  await within(cluster.agents.stop(), 15_000, 'ssh sessions never ended after terminate()');
  await assertNothingLeft(t);
  await running.catch(() => {});
  await cluster.close();
});

test(title('an agent\'s SSH connection killed on its host is re-dialled, not reported lost: the same agent serves on and runs the next command'), async (t) => {
  const cluster = await launch(t, { credentials: null });
  const lost: CredfwdError[] = [];
  cluster.agents.onUnexpectedExit((error) => lost.push(error));
  const h2 = t.context.hosts.hosts[1]!;
  const id = cluster.agents.workers.find((w) => w.host === 'h2')!.agentId;
  const agentPid = await (async () => {
    for (const pid of await h2.processes()) if ((await processTexts(pid))?.cmdline.includes('join\0--stdin')) return pid;
    throw new Error('no agent process on h2');
  })();
  const parent = Number((await readFile(`/proc/${agentPid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
  t.regex((await processTexts(parent))?.cmdline ?? '', /^sshd/, 'the agent\'s parent is its sshd session');
  const gone = new Promise<void>((resolve) => cluster.coordinator.hub.on('agent-gone', (_c: string, agentId: string) => { if (agentId === id) resolve(); }));
  process.kill(parent, 'SIGKILL');
  await within(gone, 15_000, 'the coordinator never saw h2\'s agent go');
  await untilReady(cluster.coordinator, cluster.record.id, [id]);
  t.truthy(await processTexts(agentPid), 'the same agent process serves on');
  t.deepEqual(lost, [], 'a link that heals is not reported lost');
  const results = await cluster.coordinator.run(cluster.record.id, ['true']);
  t.deepEqual(results.map((r) => r.exitCode), [0, 0, 0]);
  await cluster.close();
  await assertNothingLeft(t);
});

test(title('worker variables reach every remote agent\'s workloads without appearing in any argv'), async (t) => {
  const value = `platform-${randomBytes(12).toString('hex')}`;
  const cluster = await launch(t, { credentials: null }, { workerEnv: { PLATFORM_SECRET_TOKEN: value, PLATFORM_ZONE: 'zone a' } });
  const results = await cluster.coordinator.run(cluster.record.id, ['sh', '-c', 'printf "%s|%s" "$PLATFORM_SECRET_TOKEN" "$PLATFORM_ZONE"']);
  t.deepEqual(results.map((r) => r.stdout), [`${value}|zone a`, `${value}|zone a`, `${value}|zone a`]);
  for (const host of t.context.hosts.hosts) {
    for (const pid of await host.processes()) t.false((await processTexts(pid))?.cmdline.includes(value), `worker variable in the argv of ${host.alias} pid ${pid}`);
  }
  await cluster.close();
  await assertNothingLeft(t);
});

test(title('direct: agents dial the coordinator\'s own address, with no tunnel'), async (t) => {
  const cluster = await launch(t, { credentials: null }, { direct: true });
  t.true(cluster.coordinator.address.startsWith(`${t.context.hosts.serviceAddress}:`));
  const results = await cluster.coordinator.run(cluster.record.id, ['true']);
  t.deepEqual(results.map((r) => r.exitCode), [0, 0, 0]);
  const sessions = await localSshProcesses(t.context.hosts.configFile);
  t.is(sessions.length, 3);
  t.deepEqual(sessions.filter((p) => p.cmdline.includes('\0-R\0')), [], 'no ssh session opened a reverse tunnel');
  await cluster.close();
  await assertNothingLeft(t);
});

/** How long the killed launcher's agents go on without their coordinator. */
const GIVE_UP_S = 5;

/** A launcher in a process of its own, so a test can SIGKILL it: starts agents on `hosts` and a held workload on each. */
const LAUNCHER = `
import { Coordinator, defaultAgentProgram } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import { SshBackend } from ${JSON.stringify(new URL('../packages/coordinator/src/backends/ssh/index.ts', import.meta.url).pathname)};
const [configFile, agentFile, dir, ...hosts] = process.argv.slice(1);
const logger = createLogger({ name: 'launcher', level: 'warn' });
const coordinator = await Coordinator.start({ logger, listen: '127.0.0.1:0' });
const record = await coordinator.createCluster({ credentials: null });
await new SshBackend({ hosts, ssh: { configFile }, program: { file: agentFile, nodeArgs: defaultAgentProgram().nodeArgs }, giveUpAfterSeconds: ${GIVE_UP_S} })
  .start({ clusterId: record.id, joinString: record.joinString, coordinatorAddress: coordinator.address, direct: false, logger });
coordinator.hub.on('agent-ready', () => {
  if (coordinator.hub.readyAgents(record.id).length < hosts.length) return;
  void coordinator.run(record.id, ['sh', '-c', 'mktemp ' + dir + '/started.XXXXXX >/dev/null; sleep 300']);
  console.log('launched');
});
`;

test(title('a launcher killed with SIGKILL leaves nothing behind: every remote agent, cut off from its coordinator, stops its workloads and itself within --give-up-after'), async (t) => {
  const dir = await mkdtemp(join(t.context.scratch, 'killed-'));
  const launcher = await startService({
    command: process.execPath,
    args: ['--conditions=credfwd-source', '--input-type=module', '-e', LAUNCHER, t.context.hosts.configFile, t.context.agentFile, dir, ...t.context.hosts.hosts.map((h) => h.alias)],
    ready: /^launched$/,
    readyTimeoutMs: READY_MS,
  });
  t.teardown(() => launcher.stop());
  await untilStarted(dir, 3);
  launcher.child.kill('SIGKILL');
  const killedAt = Date.now();
  // Agents outlive their ssh sessions (a dropped link must not stop them), so they stop when their give-up time has passed
  // since they lost the coordinator, which they notice at once here: the tunnel's far end refuses them.
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, GIVE_UP_S * 1000 + LEFTOVER_MS), [], 'processes left on the hosts');
  t.log(`every host empty ${Date.now() - killedAt} ms after the launcher was killed (give-up time ${GIVE_UP_S} s)`);
  await pollUntil(async () => (await localSshProcesses(t.context.hosts.configFile)).length === 0, LEFTOVER_MS, 'ssh processes of the killed launcher still running');
  t.pass();
});
