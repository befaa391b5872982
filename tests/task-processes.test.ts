import test from 'ava';
import { launchCluster } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { launchRoleCluster, startMotoAsLauncher } from './helpers/role-launches.ts';
import { runCredfwd, isolatedEnv } from './helpers/credfwd-cli.ts';
import { killedIfRunningAfter } from './helpers/processes.ts';

function pidsIn(text: string): number[] {
  return [...text.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1]));
}

/** How long a stopped process may take to be gone; an orphan would run on for hours. */
const GONE_WITHIN_MS = 3_000;

// Each prints the pid of a process that would outlive the task; the task waits for the line, so the process surely runs first.
const VARIANTS: Array<[string, string]> = [
  ['&', 'sleep 10009 >/dev/null 2>&1 & echo "pid=$!"'],
  ['nohup, holding stdout', 'nohup sleep 10010 & echo "pid=$!"'],
  ['a double fork, holding stdout', '(sh -c \'sleep 10011 & echo "pid=$!"\')'],
  ['setsid', 'F=$(mktemp)\nsetsid sh -c \'echo "pid=$$" > "$1"; exec sleep 10012 >/dev/null 2>&1\' sh "$F" &\nwhile [ ! -s "$F" ]; do sleep 0.01; done; cat "$F"; rm -f "$F"'],
];

test('a workload\'s background processes are gone once the run returns: &, nohup, a double fork, setsid (sleep outlived the launcher with the credentials)', async (t) => {
  const cluster = await launchCluster({ workers: 1, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  for (const [what, script] of VARIANTS) {
    const [result] = await cluster.run(['sh', '-c', script]);
    t.is(result?.exitCode, 0, `${what}: ${result?.stderr}`);
    const pids = pidsIn(result?.stdout ?? '');
    t.is(pids.length, 1, `${what} printed the pid it left behind: ${JSON.stringify(result?.stdout)}`);
    t.deepEqual(await killedIfRunningAfter(pids, GONE_WITHIN_MS), [], `${what}: still running ${GONE_WITHIN_MS} ms after the run returned`);
  }
});

test('close() stops a running workload\'s setsid process (a stopped task left it running)', async (t) => {
  const cluster = await launchCluster({ workers: 1, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  let started!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => {
    started = resolve;
  });
  const running = cluster.run(['sh', '-c', 'setsid sh -c \'echo "pid=$$"; exec sleep 10020\' & wait'], {
    onOutput: (_worker, _stream, chunk) => {
      const [found] = pidsIn(chunk.toString());
      if (found) started(found);
    },
  });
  const setsidPid = await pid;
  await cluster.close();
  await running;
  t.deepEqual(await killedIfRunningAfter([setsidPid], GONE_WITHIN_MS), [], `still running ${GONE_WITHIN_MS} ms after close()`);
});

test('--on-refresh restart stops the old run\'s setsid process, which held the old credentials (it ran on with them)', async (t) => {
  const moto = await startMotoAsLauncher('restarting-launcher');
  t.teardown(() => moto.stop());
  const cluster = await launchRoleCluster(t, moto, { credentials: { roleArn: 'arn:aws:iam::123456789012:role/restarted', durationSeconds: 900 }, refreshIntervalSeconds: 1 });
  const runs: Array<{ pid: number; key: string }> = [];
  let second!: () => void;
  const restarted = new Promise<void>((resolve) => { second = resolve; });
  // Each run leaves a process in a session of its own, out of its process group, carrying that run's keys.
  const running = cluster.run(['sh', '-c', 'setsid sh -c \'echo "pid=$$ key=$AWS_ACCESS_KEY_ID"; exec sleep 10022\' & wait'], {
    onRefresh: 'restart',
    onOutput: (_worker, _stream, chunk) => {
      for (const [, pid, key] of chunk.toString().matchAll(/pid=(\d+) key=(\S+)/g)) runs.push({ pid: Number(pid), key: key ?? '' });
      if (runs.length >= 2) second();
    },
  });
  await within(restarted, 30_000, 'the command was not restarted after a refresh');
  const [first, next] = runs;
  t.not(first?.key, next?.key, 'the restarted run got fresh credentials');
  t.deepEqual(await killedIfRunningAfter([first?.pid ?? 0], GONE_WITHIN_MS), [], `the first run's setsid sleep still ran ${GONE_WITHIN_MS} ms after the restart`);
  await cluster.close();
  await running;
  t.deepEqual(await killedIfRunningAfter(runs.map((run) => run.pid), GONE_WITHIN_MS), [], 'no run\'s setsid sleep outlives close()');
});

test('credfwd launch: the background sleep is gone when the launcher exits (it kept AWS_SECRET_ACCESS_KEY alive)', async (t) => {
  const result = await runCredfwd(['launch', '--workers', '1', '--credentials', 'none', '--', 'sh', '-c', 'sleep 10021 >/dev/null 2>&1 & echo "pid=$!"'], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  const pids = pidsIn(result.stdout);
  t.is(pids.length, 1, result.stdout);
  t.deepEqual(await killedIfRunningAfter(pids, GONE_WITHIN_MS), [], `still running ${GONE_WITHIN_MS} ms after the launcher exited`);
});
