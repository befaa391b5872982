import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CREDFWD_BIN, isolatedEnv, parseJsonLines, spawnNode } from './helpers/credfwd-cli.ts';
import { within } from './helpers/deadline.ts';
import { collectOutput, type ProcessResult } from './helpers/processes.ts';
import { newServiceSecrets } from './helpers/replicas.ts';
import { prefixFor, startRedis, type TestRedis } from './helpers/redis.ts';
import { hostProcesses, leftoverProcesses, localSshProcesses, pollUntil, type SshHosts } from './helpers/ssh-hosts.ts';
import { sshHostsFixture, sshSuite, type SshHostsContext } from './helpers/ssh-suite.ts';
import { startHostReplica, type HostReplica } from './helpers/ssh-services.ts';

/*
 * The built `credfwd launch --hosts` as a user runs it, against three SSH
 * hosts: through a distributed service, and interrupted while its command
 * runs. Each test ends with no process left on any host and no ssh here.
 */

interface Context extends SshHostsContext {
  redis: TestRedis;
}

// Never a silent pass: without root or sshd every test is skipped with the reason in its title.
const suite = sshSuite<Context>();
const { base, unavailable, test, title } = suite;
sshHostsFixture(suite, { scratch: 'credfwd-ssh-lifecycle-' });

const ROLE_ARN = 'arn:aws:iam::123456789012:role/ssh-service';
/** The replicas' own AWS identity: through a service, they mint the role. Moto accepts any signature. */
const REPLICA_IDENTITY = { AWS_ACCESS_KEY_ID: 'AKIAREPLICASSHTEST01', AWS_SECRET_ACCESS_KEY: 'replica-identity-secret', AWS_REGION: 'us-east-1' };
const STARTED_MS = 40_000;
const LEFTOVER_MS = 10_000;
/** Well under the launch's own worker timeout: an interrupted launcher must not wait for anything. */
const PROMPT_EXIT_MS = 20_000;
/** sshd's sessions end a few ms after their agents: far less than the seconds agents that outlive the launcher take. */
const EXITED_WITH_LAUNCHER_MS = 1_000;
/**
 * Well under the 30 s a session waits for its tunnel, and over the 5 s an
 * aborted session is given to end: a host still running the user's login rc
 * file (root's sources pyenv here, seconds on a slow machine) takes that grace.
 */
const ABORTED_EXIT_MS = 10_000;

/**
 * An agent (the uploaded bundle) or a workload: what must be gone with the
 * launcher. A session still in the user's login rc file has started neither;
 * it ends by itself once the rc is done and reads its closed stdin, within
 * LEFTOVER_MS (assertNothingLeft).
 */
function isAgentOrWorkload(cmdline: string): boolean {
  return /\/agent-[0-9a-f]{64}\.mjs |^sleep /.test(cmdline);
}

if (!unavailable) {
  base.before(async (t) => {
    t.context.redis = await startRedis();
  });

  base.after.always(async (t) => {
    await t.context.redis?.stop();
  });
}

/** `credfwd launch --hosts h1,h2,h3 --ssh-config F ARGS`, its output collected; killed with what it started at teardown. */
function launchOnHosts(t: ExecutionContext<Context>, args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<ProcessResult> } {
  const { hosts } = t.context;
  const child = spawnNode(CREDFWD_BIN, ['launch', '--hosts', hosts.hosts.map((h) => h.alias).join(','), '--ssh-config', hosts.configFile, ...args], env);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // ssh clients of a launcher that failed the test: the hosts' teardown ends their far side.
    for (const p of await localSshProcesses(hosts.configFile)) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  });
  return { child, done: collectOutput(child) };
}

/** A workload that says it started by a file in `dir` (the hosts share this filesystem), then holds until `dir/release` appears. */
function heldWorkload(dir: string, first = 'true'): string[] {
  return ['sh', '-c', `${first} && mktemp ${dir}/started.XXXXXX >/dev/null && while [ ! -e ${dir}/release ]; do sleep 0.1; done`];
}

function untilStarted(dir: string, count: number): Promise<void> {
  return pollUntil(async () => (await readdir(dir)).filter((f) => f.startsWith('started.')).length >= count, STARTED_MS, `${count} workloads never started on the hosts`);
}

async function assertNothingLeft(t: ExecutionContext<Context>): Promise<void> {
  t.deepEqual(await leftoverProcesses(t.context.hosts.hosts, LEFTOVER_MS), [], 'processes left on the hosts');
  await pollUntil(async () => (await localSshProcesses(t.context.hosts.configFile)).length === 0, LEFTOVER_MS, 'ssh clients still running here');
}

test(title('credfwd launch --coordinator --hosts: agents on 3 hosts dial the service\'s replicas directly, results name their hosts, the cluster is deleted at the end'), async (t) => {
  const { hosts, moto, redis } = t.context;
  const prefix = prefixFor(t.title).slice(0, -1);
  const secrets = newServiceSecrets();
  const replicaEnv = { ...REPLICA_IDENTITY, AWS_ENDPOINT_URL_STS: moto.url };
  const replicas: HostReplica[] = [];
  t.teardown(() => Promise.all(replicas.map((r) => r.service.stop())));
  // One replica first, so the second finds the TLS identity it made rather than racing to make one.
  replicas.push(await startHostReplica(hosts, redis.url, prefix, secrets, replicaEnv));
  replicas.push(await startHostReplica(hosts, redis.url, prefix, secrets, replicaEnv));
  const [r1, r2] = replicas as [HostReplica, HostReplica];

  const dir = await mkdtemp(join(t.context.scratch, 'service-'));
  const { done } = launchOnHosts(t, [
    '--coordinator', r1.url, '--credentials', `role:${ROLE_ARN}`, '--json', '--env', `AWS_ENDPOINT_URL=${moto.url}`,
    '--', ...heldWorkload(dir, 'aws sts get-caller-identity --output json'),
  ], isolatedEnv({ CREDFWD_ADMIN_TOKEN: secrets.adminToken, CREDFWD_COORDINATOR_PIN: `sha256:${r1.pin}` }));
  await untilStarted(dir, 3);

  // While the workloads hold: no session carries a tunnel, and the service holds the three agents.
  const sessions = await localSshProcesses(hosts.configFile);
  t.is(sessions.length, 3, 'one ssh session per agent');
  t.deepEqual(sessions.filter((p) => p.cmdline.includes('\0-R\0')), [], 'agents dial the replicas, not a tunnel');
  const listed = (await r2.admin.request('GET', '/v1/clusters')).body as { clusters: Array<{ id: string }> };
  t.is(listed.clusters.length, 1, 'the cluster, seen from the other replica');
  const shown = await r2.admin.showCluster(listed.clusters[0]!.id) as { agents: Array<{ agentId: string }> };
  t.deepEqual(shown.agents.map((a) => a.agentId.replace(/^.*-(h\d)-w\d+$/, '$1')).sort(), ['h1', 'h2', 'h3']);

  await writeFile(join(dir, 'release'), '');
  const result = await within(done, STARTED_MS, 'credfwd launch never finished after its workloads were released');
  t.is(result.code, 0, result.stderr);
  const lines = parseJsonLines(result.stdout) as Array<ReturnType<typeof parseJsonLines>[number] & { host?: string }>;
  t.deepEqual(lines.map((l) => l.host).sort(), ['h1', 'h2', 'h3'], 'one result per host, each naming it');
  for (const line of lines) {
    t.is(line.exitCode, 0, line.stderr);
    t.regex((JSON.parse(line.stdout) as { Arn: string }).Arn, /^arn:aws:sts::123456789012:assumed-role\/ssh-service\/credfwd-/);
  }
  const after = (await r1.admin.request('GET', '/v1/clusters')).body as { clusters: unknown[] };
  t.deepEqual(after.clusters, [], 'the cluster was deleted when the command finished');
  t.false(result.stderr.includes(secrets.adminToken), 'the admin token is not in the launcher\'s output');
  await assertNothingLeft(t);
});

// SIGHUP too: closing the terminal a launch runs in sends it.
for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  test(title(`${signal} to credfwd launch --hosts while its command runs: exit ${status}, no agent or workload left on any host`), async (t) => {
    const dir = await mkdtemp(join(t.context.scratch, `${signal}-`));
    // A background child that outlives its shell is part of the workload and must stop with it.
    const { child, done } = launchOnHosts(t, ['--credentials', 'none', '--workers-per-host', '2', '--', 'sh', '-c', `sleep 300 & mktemp ${dir}/started.XXXXXX >/dev/null; wait`], isolatedEnv());
    await untilStarted(dir, 6);
    child.kill(signal);
    const result = await within(done, PROMPT_EXIT_MS, `credfwd launch never exited after ${signal}`);
    t.is(result.code, status, result.stderr);
    await assertNothingLeft(t);
  });
}

test(title('Ctrl-C pressed twice while the command runs on 3 hosts: the second one does not cut the clean-up short, nothing is left'), async (t) => {
  const dir = await mkdtemp(join(t.context.scratch, 'twice-'));
  const { child, done } = launchOnHosts(t, ['--credentials', 'none', '--', 'sh', '-c', `mktemp ${dir}/started.XXXXXX >/dev/null; sleep 300`], isolatedEnv());
  await untilStarted(dir, 3);
  // Back to back, as an impatient user does: the second lands while the sessions are being ended.
  child.kill('SIGINT');
  child.kill('SIGINT');
  const result = await within(done, PROMPT_EXIT_MS, 'credfwd launch never exited after two SIGINTs');
  t.is(result.code, 130, result.stderr);
  await assertNothingLeft(t);
});

test(title('a cluster served without a command on 3 hosts: Ctrl-C ends it with exit 0 and stops every agent there'), async (t) => {
  const { hosts } = t.context;
  const { child, done } = launchOnHosts(t, ['--credentials', 'none'], isolatedEnv());
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  // The banner comes once every worker is ready; only then is Ctrl-C the end of serving rather than an aborted start-up.
  await pollUntil(async () => stdout.includes('serving until Ctrl-C'), STARTED_MS, 'credfwd launch never said it was serving');
  t.regex(stdout, /with 3 workers on 3 hosts/);
  t.deepEqual((await agentHosts(hosts)).sort(), ['h1', 'h2', 'h3'], 'an agent runs on every host');
  child.kill('SIGINT');
  const result = await within(done, PROMPT_EXIT_MS, 'credfwd launch never exited after SIGINT');
  t.is(result.code, 0, result.stderr);
  await assertNothingLeft(t);
});

test(title('Ctrl-C while 24 agents are starting on 3 hosts: exit 130 with error[ABORTED], every started agent stopped, nothing left'), async (t) => {
  const { hosts } = t.context;
  const { child, done } = launchOnHosts(t, ['--credentials', 'none', '--workers-per-host', '8', '--', 'sleep', '300'], isolatedEnv());
  // The first agent running on a host: sessions are open and the rest are still starting or joining (8 per host take seconds on this machine).
  await pollUntil(async () => (await agentHosts(hosts)).length > 0, STARTED_MS, 'no agent ever started on a host');
  const sent = Date.now();
  child.kill('SIGINT');
  const result = await within(done, PROMPT_EXIT_MS, 'credfwd launch never exited after SIGINT');
  t.log(`exited ${Date.now() - sent} ms after SIGINT`);
  t.is(result.code, 130, result.stderr);
  t.regex(result.stderr, /^error\[ABORTED\]: /m, 'interrupted during start-up, not during the command');
  // Its exit means the agents are gone, bar sshd's own clean-up: a launcher that killed its ssh clients instead exited ~2 s before they were.
  t.deepEqual(await leftoverProcesses(hosts.hosts, EXITED_WITH_LAUNCHER_MS, isAgentOrWorkload), [], `agents or workloads still on the hosts ${EXITED_WITH_LAUNCHER_MS} ms after the launcher exited`);
  await assertNothingLeft(t);
});

test(title('Ctrl-C while the sessions wait for their tunnels: exit 130 at once, not after the tunnel timeout, and nothing left anywhere'), async (t) => {
  const { hosts } = t.context;
  // LogLevel ERROR (the user's option wins) hides the "Allocated port" line, so every session waits for a tunnel port it is never told.
  const { child, done } = launchOnHosts(t, ['--ssh-option', 'LogLevel=ERROR', '--credentials', 'none', '--', 'true'], isolatedEnv());
  await pollUntil(async () => (await localSshProcesses(hosts.configFile)).filter((p) => p.cmdline.includes('\0-R\0')).length === 3, STARTED_MS, 'the three agent sessions never opened');
  const sent = Date.now();
  child.kill('SIGINT');
  const result = await within(done, PROMPT_EXIT_MS, 'credfwd launch never exited after SIGINT');
  t.is(result.code, 130, result.stderr);
  t.regex(result.stderr, /^error\[ABORTED\]: /m);
  t.true(Date.now() - sent < ABORTED_EXIT_MS, `exited ${Date.now() - sent} ms after SIGINT`);
  t.deepEqual(await leftoverProcesses(hosts.hosts, EXITED_WITH_LAUNCHER_MS, isAgentOrWorkload), [], `agents or workloads still on the hosts ${EXITED_WITH_LAUNCHER_MS} ms after the launcher exited`);
  await assertNothingLeft(t);
});

test(title('Ctrl-C while one host hangs in its SSH handshake: exit 130 at once, not after the connect timeout, and nothing left anywhere'), async (t) => {
  const { hosts } = t.context;
  const stalled = hosts.hosts[2]!;
  // A stopped sshd still completes TCP handshakes in the kernel but never sends its banner: ssh waits up to ConnectTimeout (10 s).
  process.kill(stalled.sshdPid, 'SIGSTOP');
  const resume = (): void => { try { process.kill(stalled.sshdPid, 'SIGCONT'); } catch { /* sshd gone with the hosts */ } };
  t.teardown(resume);
  const { child, done } = launchOnHosts(t, ['--credentials', 'none', '--', 'true'], isolatedEnv());
  await pollUntil(async () => (await localSshProcesses(hosts.configFile)).some((p) => p.cmdline.includes(`\0${stalled.alias}\0`)), STARTED_MS, `no ssh to ${stalled.alias} was started`);
  const sent = Date.now();
  child.kill('SIGINT');
  const result = await within(done, PROMPT_EXIT_MS, 'credfwd launch never exited after SIGINT');
  t.is(result.code, 130, result.stderr);
  t.regex(result.stderr, /^error\[ABORTED\]: /m);
  t.true(Date.now() - sent < 5_000, `exited ${Date.now() - sent} ms after SIGINT`);
  // Let sshd take the abandoned connection: its pre-auth child must find the client gone and exit too.
  resume();
  await assertNothingLeft(t);
});

/** The hosts with a credfwd agent running on them now. */
async function agentHosts(hosts: SshHosts): Promise<string[]> {
  return [...new Set((await hostProcesses(hosts.hosts)).filter((p) => p.cmdline.includes('join\0--stdin')).map((p) => p.host))];
}
