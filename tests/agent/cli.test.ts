import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { CloseCode, createJoinToken, formatJoinString } from '@credfwd/shared';
import { ProtocolPeer, createTlsIdentity, type TlsIdentity } from './helpers/protocol-peer.ts';
import { descendantPids, isRunning } from '../helpers/processes.ts';

const test = anyTest as TestFn<{ tls: TlsIdentity; dir: string; children: ChildProcess[]; peers: ProtocolPeer[] }>;

const BIN = fileURLToPath(new URL('../../packages/worker-agent/bin/credfwd-agent.js', import.meta.url));

interface Run {
  child: ChildProcess;
  result: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function runAgent(t: { context: { children: ChildProcess[] } }, args: string[], env: Record<string, string> = {}, stdin: 'ignore' | 'pipe' = 'ignore'): Run {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  t.context.children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const result = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, result };
}

test.before(async (t) => {
  t.context.tls = await createTlsIdentity();
});

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'credfwd-agent-cli-'));
  t.context.children = [];
  t.context.peers = [];
});

test.afterEach.always(async (t) => {
  for (const child of t.context.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(t.context.peers.map((peer) => peer.close()));
  await rm(t.context.dir, { recursive: true, force: true });
});

const sampleJoin = (token: string): string => formatJoinString({ addresses: ['127.0.0.1:1'], clusterId: 'c1', token, pin: 'ab'.repeat(32) });

test('credfwd-agent refuses a join string on the command line with exit 2, without echoing the token', async (t) => {
  const token = createJoinToken();
  for (const args of [['join', sampleJoin(token)], [sampleJoin(token)], ['join', `--join-file=${sampleJoin(token)}`]]) {
    const { code, stdout, stderr } = await runAgent(t, args).result;
    t.is(code, 2);
    t.regex(stderr, /^error\[USAGE\]: the join string must not be passed on the command line/m);
    t.regex(stderr, /^hint: .*CREDFWD_JOIN.*--join-file/m);
    t.false(stdout.includes(token) || stderr.includes(token), 'the token is never echoed');
  }
});

test('credfwd-agent join without a join string is a usage error', async (t) => {
  const { code, stderr } = await runAgent(t, ['join']).result;
  t.is(code, 2);
  t.regex(stderr, /^error\[USAGE\]: no join string given/m);
});

test('credfwd-agent join rejects a malformed join file with JOIN_STRING_INVALID, without echoing it', async (t) => {
  const token = createJoinToken();
  const file = join(t.context.dir, 'join');
  await writeFile(file, `credfwd://127.0.0.1:1/c1?token=${token}\n`, { mode: 0o600 });
  const { code, stderr } = await runAgent(t, ['join', '--join-file', file]).result;
  t.is(code, 2);
  t.regex(stderr, /^error\[JOIN_STRING_INVALID\]: join string is invalid: the pin is missing/m);
  t.false(stderr.includes(token));
  t.false(stderr.includes('    at '), 'no stack trace without --debug');
});

test('credfwd-agent join exits 1 with AGENT_PIN_MISMATCH when the coordinator certificate is not the pinned one', async (t) => {
  const peer = await ProtocolPeer.start({ tls: t.context.tls });
  t.context.peers.push(peer);
  const joinString = formatJoinString(peer.join({ pin: 'cd'.repeat(32) }));
  const { code, stderr } = await runAgent(t, ['join'], { CREDFWD_JOIN: joinString }).result;
  t.is(code, 1);
  t.regex(stderr, /^error\[AGENT_PIN_MISMATCH\]: /m);
  t.false(stderr.includes(peer.token));
  t.deepEqual(peer.frames, []);
});

test('credfwd-agent join reads CREDFWD_JOIN, keeps it from tasks, and exits 0 when the cluster is revoked', async (t) => {
  const peer = await ProtocolPeer.start({ tls: t.context.tls, delivery: 'none' });
  t.context.peers.push(peer);
  const run = runAgent(t, ['join', '--agent-id', 'cli-agent'], { CREDFWD_JOIN: formatJoinString(peer.join({ pin: t.context.tls.pin })) });
  const session = await peer.nextSession();
  t.is(session.agentId, 'cli-agent');
  session.send({ type: 'run', taskId: 'env', argv: [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.env))'] });
  const task = await session.taskResult('env');
  const env = JSON.parse(task.stdout) as Record<string, string>;
  // Only the task's own mark, by which the agent finds its processes at stop.
  t.deepEqual(Object.keys(env).filter((name) => name.startsWith('CREDFWD_')), ['CREDFWD_TASK_MARK']);
  session.ws.close(CloseCode.clusterRevoked);
  const { code, stderr } = await run.result;
  t.is(code, 0);
  t.regex(stderr, /cluster revoked; agent exiting/);
  t.false(stderr.includes(peer.token));
});

test('credfwd-agent join reads the join string from --join-file and stops cleanly on SIGTERM', async (t) => {
  const peer = await ProtocolPeer.start({ tls: t.context.tls, delivery: 'none' });
  t.context.peers.push(peer);
  const file = join(t.context.dir, 'join');
  await writeFile(file, `${formatJoinString(peer.join({ pin: t.context.tls.pin }))}\n`, { mode: 0o600 });
  const run = runAgent(t, ['join', '--join-file', file]);
  const session = await peer.nextSession();
  t.regex(session.agentId, /^[A-Za-z0-9._-]+-[0-9a-f]{8}$/, 'host name and a random suffix by default');
  const closed = session.closed();
  run.child.kill('SIGTERM');
  const { code } = await run.result;
  t.is(code, 0);
  t.is(await closed, CloseCode.normal);
});

/** Polls until `pids()` names a process, or fails with `message` after `deadlineMs`. */
async function firstPid(pids: () => number[], deadlineMs: number, message: string): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const [pid] = pids();
    if (pid !== undefined) return pid;
    if (Date.now() >= deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts a task that would run for ever on the agent and returns its pid once it runs. */
async function startSleeper(session: Awaited<ReturnType<ProtocolPeer['nextSession']>>, agentPid: number): Promise<number> {
  session.send({ type: 'run', taskId: 'sleeper', argv: ['sleep', '10021'] });
  return firstPid(() => descendantPids(agentPid), 5_000, 'the task did not start within 5 s');
}

for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
  test(`credfwd-agent join refuses a join file of mode ${mode.toString(8)}, which other users may read or write (issue 10: a world-readable --join-file was accepted)`, async (t) => {
    const token = createJoinToken();
    const file = join(t.context.dir, 'join');
    await writeFile(file, `${sampleJoin(token)}\n`);
    await chmod(file, mode);
    const { code, stdout, stderr } = await runAgent(t, ['join', '--join-file', file]).result;
    t.is(code, 2);
    t.regex(stderr, /^error\[JOIN_FILE_INSECURE\]: the join file .+ may be read or written by other users \(mode 0\d{3}\)/m);
    t.true(stderr.includes(`hint: chmod 600 ${file}\n`), stderr);
    t.false(stdout.includes(token) || stderr.includes(token), 'the token is never echoed');
  });
}

test('credfwd-agent join --stdin reads the join string from stdin, keeps it out of its environment, and stops its tasks when stdin closes (issue 10: agents outlived a killed launcher)', async (t) => {
  const peer = await ProtocolPeer.start({ tls: t.context.tls, delivery: 'none' });
  t.context.peers.push(peer);
  const run = runAgent(t, ['join', '--stdin', '--agent-id', 'piped'], {}, 'pipe');
  run.child.stdin?.write(`${formatJoinString(peer.join({ pin: t.context.tls.pin }))}\n`);
  const session = await peer.nextSession();
  t.is(session.agentId, 'piped');
  const agentPid = run.child.pid ?? 0;
  t.false(readFileSync(`/proc/${agentPid}/environ`, 'latin1').includes(peer.token), 'a task could read the agent\'s environment');
  const sleeper = await startSleeper(session, agentPid);
  const closed = session.closed();
  // What the kernel does for a launcher that dies, however it dies.
  run.child.stdin?.end();
  const { code, stderr } = await run.result;
  t.is(code, 0, stderr);
  t.regex(stderr, /stdin closed: the launcher is gone/);
  t.is(await closed, CloseCode.normal);
  t.false(isRunning(sleeper), 'the task was stopped');
  t.false(stderr.includes(peer.token));
});

test('credfwd-agent join --stdin is a usage error when stdin ends before a join string', async (t) => {
  const run = runAgent(t, ['join', '--stdin'], {}, 'pipe');
  run.child.stdin?.end('credfwd://127.0.0.1:1/c1');
  const { code, stderr } = await run.result;
  t.is(code, 2);
  t.regex(stderr, /^error\[USAGE\]: stdin ended before a join string and a newline arrived/m);
});

test('credfwd-agent stops its tasks and exits 0 on SIGHUP instead of dying and orphaning them (issue 10: closing the terminal orphaned workloads)', async (t) => {
  const peer = await ProtocolPeer.start({ tls: t.context.tls, delivery: 'none' });
  t.context.peers.push(peer);
  const run = runAgent(t, ['join', '--agent-id', 'hup'], { CREDFWD_JOIN: formatJoinString(peer.join({ pin: t.context.tls.pin })) });
  const session = await peer.nextSession();
  const sleeper = await startSleeper(session, run.child.pid ?? 0);
  t.teardown(() => { if (isRunning(sleeper)) process.kill(sleeper, 'SIGKILL'); });
  const closed = session.closed();
  run.child.kill('SIGHUP');
  const { code, stderr } = await run.result;
  t.is(code, 0, stderr);
  t.is(await closed, CloseCode.normal);
  t.false(isRunning(sleeper), 'the task was stopped');
});
