import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CredfwdError, createLogger } from '@credfwd/shared';
import { launchCluster } from '@credfwd/coordinator';
import { CREDFWD_BIN, isolatedEnv } from './helpers/credfwd-cli.ts';
import { markedLeftAfter, markedPids, processMark } from './helpers/marked-processes.ts';
import { collectOutput, descendantPids, isRunning, type ProcessResult } from './helpers/processes.ts';

const quiet = createLogger({ name: 'credfwd', level: 'silent' });

/** Well under the 60 s a launch waits for its workers: an interrupt must not wait for that. */
const PROMPT_EXIT_MS = 15_000;

/**
 * A preload that stalls every local agent (`credfwd-agent join …`) before it
 * runs, so start-up is still waiting for workers whenever the test chooses
 * to interrupt it. The launcher itself (`credfwd launch`) is left alone.
 */
function stallingAgentsEnv(): Record<string, string> {
  const file = join(mkdtempSync(join(tmpdir(), 'credfwd-stall-')), 'stall-agents.cjs');
  writeFileSync(file, "if (process.argv.includes('join')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);\n");
  return { NODE_OPTIONS: `--require=${file}` };
}

/** Resolves once `check` returns something truthy; fails the test at the deadline with `what`. */
async function until<T>(t: ExecutionContext, what: string, check: () => T | undefined | false, deadlineMs = 40_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves with the result, or fails once `ms` passed: a launcher that ignores its interrupt would hang here. */
async function within(t: ExecutionContext, done: Promise<ProcessResult>, ms: number, what: string): Promise<ProcessResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not exit within ${ms} ms`)), ms); });
  try {
    return await Promise.race([done, late]);
  } catch (err) {
    t.fail(String(err));
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function killOnTeardown(t: ExecutionContext, child: ChildProcess, mark: string): void {
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of markedPids(mark)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  });
}

for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  test(`${signal} during start-up aborts it at once: exit ${status}, error[ABORTED], no agent left (issue 10: SIGINT waited 64 s, a second one orphaned the agents)`, async (t) => {
    const mark = processMark();
    const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '3', '--credentials', 'none', '--', 'true'], {
      env: isolatedEnv({ ...mark.env, ...stallingAgentsEnv() }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnTeardown(t, child, mark.name);
    const done = collectOutput(child);
    const agents = await until(t, 'three local agents', () => { const pids = descendantPids(child.pid!); return pids.length >= 3 && pids; });
    const sent = Date.now();
    child.kill(signal);
    const result = await within(t, done, PROMPT_EXIT_MS, 'the interrupted launcher');
    t.is(result.code, status, result.stderr);
    t.true(Date.now() - sent < PROMPT_EXIT_MS);
    t.regex(result.stderr, new RegExp(`^error\\[ABORTED\\]: .*${signal}.*\\nhint: `, 'm'));
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
    t.deepEqual(await markedLeftAfter(mark.name), [], 'no process of the launch is left');
    t.true(agents.every((pid) => !isRunning(pid)));
  });
}

test('a second SIGINT while start-up is being aborted still leaves no agent behind', async (t) => {
  const mark = processMark();
  const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '2', '--credentials', 'none', '--', 'true'], {
    env: isolatedEnv({ ...mark.env, ...stallingAgentsEnv() }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnTeardown(t, child, mark.name);
  const done = collectOutput(child);
  await until(t, 'two local agents', () => descendantPids(child.pid!).length >= 2);
  child.kill('SIGINT');
  child.kill('SIGINT');
  const result = await within(t, done, PROMPT_EXIT_MS, 'the twice-interrupted launcher');
  t.is(result.code, 130, result.stderr);
  t.deepEqual(await markedLeftAfter(mark.name), [], 'no process of the launch is left');
});

test('SIGHUP to the launcher\'s process group while a command runs: exit 129, agent and workload gone (issue 10: the workload was orphaned)', async (t) => {
  const mark = processMark();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-hup-'));
  const pidFile = join(dir, 'workload.pid');
  // detached: a process group of its own, as `setsid credfwd launch …` makes; closing a terminal signals the whole group.
  const child = spawn(process.execPath, ['--', CREDFWD_BIN, 'launch', '--workers', '1', '--credentials', 'none', '--', 'sh', '-c', `echo $$ > ${pidFile}; echo started; exec sleep 10003`], {
    env: isolatedEnv(mark.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  killOnTeardown(t, child, mark.name);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
  const done = collectOutput(child);
  await until(t, 'the workload to start', () => stdout.includes('| started') && existsSync(pidFile));
  const workload = Number(readFileSync(pidFile, 'utf8'));
  t.true(isRunning(workload));
  process.kill(-child.pid!, 'SIGHUP');
  const result = await within(t, done, PROMPT_EXIT_MS * 2, 'the hung-up launcher');
  t.is(result.code, 129, result.stderr);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
  t.deepEqual(await markedLeftAfter(mark.name), [], 'no agent or workload is left');
  t.false(isRunning(workload));
});

test('credfwd launch … | head -1 ends quietly: exit 141, no EPIPE stack trace, agent and workload gone (issue 10: uncaught write EPIPE, both orphaned)', async (t) => {
  const mark = processMark();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-epipe-'));
  const pidFile = join(dir, 'workload.pid');
  const quote = (arg: string): string => `'${arg.replaceAll("'", "'\\''")}'`;
  const launcher = [process.execPath, '--', CREDFWD_BIN, 'launch', '--workers', '1', '--credentials', 'none', '--', 'sh', '-c', `echo $$ > ${pidFile}; seq 1 100000; sleep 10011`].map(quote).join(' ');
  // bash for PIPESTATUS: the launcher's own exit status, not head's.
  const child = spawn('bash', ['-c', `${launcher} | head -1; echo "launcher-status=\${PIPESTATUS[0]}" >&2`], { env: isolatedEnv(mark.env), stdio: ['ignore', 'pipe', 'pipe'] });
  killOnTeardown(t, child, mark.name);
  const result = await within(t, collectOutput(child), 30_000, 'the pipeline');
  t.regex(result.stdout, /^c-[0-9a-f]+-w1 \| 1\n$/, 'head printed the first line');
  t.regex(result.stderr, /launcher-status=141\n/);
  t.notRegex(result.stderr, /EPIPE|\n\s+at |error\[/, 'nothing but quiet');
  t.true(existsSync(pidFile), 'the workload ran');
  t.deepEqual(await markedLeftAfter(mark.name), [], 'no agent or workload is left');
  t.false(isRunning(Number(readFileSync(pidFile, 'utf8'))));
});

// Serial: ava runs these before the concurrent tests, whose launchers would otherwise count among this process's children.
test.serial('launchCluster with an aborted signal rejects with ABORTED at once and stops the agents it started', async (t) => {
  const controller = new AbortController();
  const before = new Set(descendantPids(process.pid));
  const launching = launchCluster({ workers: 2, credentials: null, workerEnv: stallingAgentsEnv(), signal: controller.signal, readyTimeoutMs: 60_000, logger: quiet });
  const agents = await until(t, 'two local agents', () => { const pids = descendantPids(process.pid).filter((pid) => !before.has(pid)); return pids.length >= 2 && pids; });
  const sent = Date.now();
  controller.abort('test');
  const error = await t.throwsAsync(launching, { instanceOf: CredfwdError, code: 'ABORTED' });
  t.regex(error?.message ?? '', /interrupted \(test\)/);
  t.true(Date.now() - sent < PROMPT_EXIT_MS, 'not after the ready timeout');
  for (const pid of agents) t.false(isRunning(pid), `agent ${pid} is gone`);
});

test.serial('launchCluster with a signal aborted before the call starts nothing', async (t) => {
  const before = descendantPids(process.pid).length;
  await t.throwsAsync(launchCluster({ workers: 2, credentials: null, signal: AbortSignal.abort('early'), logger: quiet }), { code: 'ABORTED' });
  t.is(descendantPids(process.pid).length, before);
});
