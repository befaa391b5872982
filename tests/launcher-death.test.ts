import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { Coordinator, launchCluster } from '@credfwd/coordinator';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { CREDFWD_BIN, isolatedEnv } from './helpers/credfwd-cli.ts';
import { freePort } from './helpers/free-port.ts';
import { markedPids, processMark } from './helpers/marked-processes.ts';
import { createIamUser, startMoto } from './helpers/moto.ts';
import { collectOutput, descendantPids, isRunning, stillRunningAfter, type ProcessResult } from './helpers/processes.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

/** A workload that prints its shell's pid and would run for hours, with a child of its own. */
const SLEEPER = ['sh', '-c', 'echo workload-pid=$$; sleep 10001'];
/** An agent notices its launcher's death at once and gives its tasks SIGTERM; `sleep` dies of that. */
const ORPHAN_DEADLINE_MS = 5_000;

interface Launcher {
  child: ChildProcess;
  done: Promise<ProcessResult>;
  /** The pids the workloads printed, once `count` of them have. */
  workloadPids(count: number): Promise<number[]>;
  /** Adds processes for the teardown to kill if the test fails before they are gone. */
  track(pids: number[]): void;
}

/**
 * Starts `credfwd launch` and tears down, whatever happens to the test,
 * the launcher and every process it had started when last looked at.
 */
function startLauncher(t: ExecutionContext, args: string[], options: { detached?: boolean; env?: Record<string, string> } = {}): Launcher {
  const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', ...args], {
    env: isolatedEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const done = collectOutput(child);
  const tracked = new Set<number>();
  t.teardown(() => {
    for (const pid of [child.pid ?? 0, ...tracked]) if (pid > 0 && isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  let stdout = '';
  const seen: Array<() => void> = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const check of seen) check();
  });
  const pids = (): number[] => [...stdout.matchAll(/workload-pid=(\d+)/g)].map((m) => Number(m[1]));
  return {
    child,
    done,
    track: (more) => { for (const pid of more) tracked.add(pid); },
    workloadPids: (count) => new Promise((resolve, reject) => {
      const check = (): void => { if (pids().length >= count) resolve(pids()); };
      seen.push(check);
      void done.then((result) => reject(new Error(`the launcher exited (${result.code ?? result.signal}) before ${count} workloads ran: ${result.stderr}`)));
      check();
    }),
  };
}

/** Everything the launcher started: agents (its children) and their workloads (grandchildren). */
async function everythingStarted(t: ExecutionContext, launcher: Launcher, workers: number): Promise<{ agents: number[]; all: number[] }> {
  const workloads = await launcher.workloadPids(workers);
  const all = descendantPids(launcher.child.pid ?? 0);
  launcher.track(all);
  const agents = all.filter((pid) => parentOf(pid) === launcher.child.pid);
  t.is(agents.length, workers, 'one agent per worker');
  for (const pid of workloads) t.true(all.includes(pid), `workload ${pid} runs under an agent`);
  t.true(all.length >= workers * 3, 'agents, shells and sleeps run');
  return { agents, all };
}

/** Polls `read` until `done` holds, or fails with `message` after `deadlineMs`. */
async function waitFor<T>(read: () => T, done: (value: T) => boolean, deadlineMs: number, message: string): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = read();
    if (done(value)) return value;
    if (Date.now() >= deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

test('SIGKILL of credfwd launch stops both agents and both workloads (issue 10: they ran on with valid credentials for the credentials\' whole life)', async (t) => {
  const launcher = startLauncher(t, ['--workers', '2', '--credentials', 'none', '--', ...SLEEPER]);
  const { all } = await everythingStarted(t, launcher, 2);
  launcher.child.kill('SIGKILL');
  await launcher.done;
  t.deepEqual(await stillRunningAfter(all, ORPHAN_DEADLINE_MS), [], `no agent or workload outlives a SIGKILLed launcher by ${ORPHAN_DEADLINE_MS} ms`);
});

/** The value of `name` in a process's environment, if it is running and readable. */
function environValue(pid: number, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((pair) => pair.startsWith(`${name}=`))?.slice(name.length + 1);
  } catch {
    return undefined; // exited meanwhile
  }
}

test('SIGKILL of a forwarding launch: no process of it holds the forwarded secret a moment later (issue 10: workloads kept valid credentials for 23 minutes)', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const user = await createIamUser(moto, 'killed-launcher');
  // The mark finds every process of this launch, even one re-parented to init after its agent died.
  const mark = processMark();
  const env = { ...mark.env, AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey, AWS_ENDPOINT_URL_STS: moto.url, AWS_REGION: 'us-east-1' };
  const launcher = startLauncher(t, ['--workers', '2', '--duration', '15m', '--', ...SLEEPER], { env });
  t.teardown(() => { for (const pid of markedPids(mark.name)) if (isRunning(pid)) process.kill(pid, 'SIGKILL'); });
  const workloads = await launcher.workloadPids(2);
  const secret = environValue(workloads[0] ?? 0, 'AWS_SECRET_ACCESS_KEY') ?? '';
  t.true(secret.length > 0, 'the workload holds forwarded credentials');
  t.not(secret, user.secretAccessKey, 'forwarded session credentials, not the launcher\'s keys');
  const holders = (): number[] => markedPids(mark.name).filter((pid) => isRunning(pid) && environValue(pid, 'AWS_SECRET_ACCESS_KEY') === secret);
  t.true(holders().length >= 4, 'both shells and both sleeps hold the secret');
  const launch = markedPids(mark.name).filter((pid) => pid !== launcher.child.pid);

  const killedAt = Date.now();
  launcher.child.kill('SIGKILL');
  await launcher.done;
  const left = await stillRunningAfter(launch, ORPHAN_DEADLINE_MS);
  t.log(`last agent or workload gone ${Date.now() - killedAt} ms after kill -9 of the launcher`);
  t.deepEqual(left, [], `no agent or workload outlives the launcher by ${ORPHAN_DEADLINE_MS} ms`);
  t.deepEqual(holders(), [], 'no process holds the forwarded secret');
});

test('SIGHUP to the launcher\'s process group, as a closed terminal sends, leaves no agent or workload behind (issue 10: the workload was orphaned)', async (t) => {
  // Its own session and process group, as `setsid credfwd launch` in a terminal would have.
  const launcher = startLauncher(t, ['--workers', '2', '--credentials', 'none', '--', ...SLEEPER], { detached: true });
  const { all } = await everythingStarted(t, launcher, 2);
  process.kill(-(launcher.child.pid ?? 0), 'SIGHUP');
  await launcher.done;
  t.deepEqual(await stillRunningAfter(all, ORPHAN_DEADLINE_MS), [], `no agent or workload outlives the hang-up by ${ORPHAN_DEADLINE_MS} ms`);
});

test('a workload cannot read the join string back from its local agent\'s /proc/PID/environ or command line (issue 10: it could, and enrol more agents)', async (t) => {
  const before = new Set(descendantPids(process.pid));
  const cluster = await launchCluster({ workers: 2, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const token = /token=([\w-]+)/.exec(cluster.joinCommand)?.[1] ?? '';
  t.true(token.length > 20, 'the join token is known to the test');
  // $PPID of the workload is its agent: exactly what a curious workload would read.
  const results = await cluster.run(['sh', '-c', 'tr "\\0" "\\n" < /proc/$PPID/environ; tr "\\0" " " < /proc/$PPID/cmdline']);
  t.is(results.length, 2);
  for (const result of results) {
    t.is(result.exitCode, 0, result.stderr);
    t.regex(result.stdout, /CREDFWD_AGENT_ID=/, 'the workload did read its agent\'s environment');
    t.false(result.stdout.includes(token), `${result.worker}: the join token is not in the agent's environment or argv`);
    t.false(result.stdout.includes('CREDFWD_JOIN'), `${result.worker}: no CREDFWD_JOIN`);
  }
  for (const pid of descendantPids(process.pid).filter((p) => !before.has(p))) {
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    t.false(environ.includes(token), `process ${pid} holds no join token in its environment`);
  }
});

test('an agent gives up --give-up-after after losing its coordinator, though its credentials are valid for hours (issue 10: it counted only from their expiry)', async (t) => {
  const port = await freePort();
  const link = await startTcpProxy(`127.0.0.1:${port}`);
  t.teardown(() => link.stop());
  const coordinator = await Coordinator.start({ logger: capturedLogger().logger, listen: `127.0.0.1:${port}`, publicAddress: link.address });
  t.teardown(() => coordinator.close());
  const expiration = new Date(Date.now() + 36 * 3600_000);
  const cluster = await coordinator.createCluster({
    credentials: 'forward',
    launcher: async () => ({ accessKeyId: 'ASIAGIVEUPTEST000001', secretAccessKey: 'give-up-secret', sessionToken: 'give-up-token', expiration }),
  });
  const agent = spawnAgent(cluster.joinString, 'holding-36h', {}, ['--give-up-after', '2s']);
  t.teardown(() => { agent.child.kill('SIGKILL'); });
  await agentReady(coordinator, cluster.id, 'holding-36h');
  void coordinator.run(cluster.id, ['sh', '-c', 'sleep 10013; true']).catch(() => undefined);
  const workloads = await waitFor(() => descendantPids(agent.child.pid ?? 0), (pids) => pids.length >= 2, 5_000, 'the shell and its sleep did not start within 5 s');

  // The coordinator stays up, but this worker can never reach it again.
  const lostAt = Date.now();
  await link.stop();
  const result = await agent.result;
  const tookMs = Date.now() - lostAt;
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[AGENT_UNREACHABLE\]: no coordinator answered for 2 s/m);
  t.true(tookMs < 30_000, `gave up ${tookMs} ms after the loss, not at the credentials' expiry 36 h away`);
  t.deepEqual(await stillRunningAfter(workloads), [], 'no workload is orphaned');
  t.false(result.stderr.includes('give-up-secret'));
});

test('a second agent with an agent id already connected is refused with AGENT_ID_IN_USE and the first keeps its connection (issue 10: the two kicked each other off four times a second)', async (t) => {
  const log = capturedLogger();
  const coordinator = await Coordinator.start({ logger: log.logger });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: null });
  const joins: string[] = [];
  const gone: string[] = [];
  coordinator.hub.on('agent-ready', (clusterId, agentId) => { if (clusterId === cluster.id) joins.push(agentId); });
  coordinator.hub.on('agent-gone', (clusterId, agentId) => { if (clusterId === cluster.id) gone.push(agentId); });
  const first = spawnAgent(cluster.joinString, 'twin');
  t.teardown(() => { first.child.kill('SIGKILL'); });
  await agentReady(coordinator, cluster.id, 'twin');
  const firstRemote = coordinator.hub.agent(cluster.id, 'twin')?.remote;

  const second = spawnAgent(cluster.joinString, 'twin');
  t.teardown(() => { second.child.kill('SIGKILL'); });
  const result = await second.result;
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[AGENT_ID_IN_USE\]: another agent is connected to this cluster under the same agent id\nhint: .*--agent-id.*CREDFWD_AGENT_ID/m);
  t.false(result.stderr.includes(cluster.joinString.split('token=')[1]?.split('&')[0] ?? '<none>'), 'the token is never echoed');

  t.regex(log.text(), /"level":40.*"agentId":"twin","closeCode":4410,"detail":"agent id already used by another agent, connected from 127\.0\.0\.1:\d+".*"msg":"agent refused"/, 'the coordinator warns');

  // Exactly one join and no leave: the first was never replaced, not even for a moment.
  t.deepEqual(joins, ['twin']);
  t.deepEqual(gone, []);
  t.is(coordinator.hub.agent(cluster.id, 'twin')?.remote, firstRemote, 'the first agent is still the connected one');
  t.true(isRunning(first.child.pid ?? 0));
  const [served] = await coordinator.run(cluster.id, ['true']);
  t.is(served?.exitCode, 0, 'the first agent still runs commands');
});
