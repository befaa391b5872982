import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { CloseCode, formatJoinString } from '@credfwd/shared';
import { ProtocolPeer, createTlsIdentity, type PeerSession, type TlsIdentity } from './helpers/protocol-peer.ts';
import { descendantPids, isRunning } from '../helpers/processes.ts';

/*
 * `credfwd-agent join --stdin --outlive-stdin`, as the SSH launcher runs it:
 * the end of stdin (a dropped SSH session) and the loss of the readers of
 * its stdout and stderr (sshd gone) must not stop the agent; a `stop` line,
 * revocation or --give-up-after do. The built one-file agent runs here.
 */

const test = anyTest as TestFn<{ tls: TlsIdentity; children: ChildProcess[]; peers: ProtocolPeer[] }>;
const BIN = fileURLToPath(new URL('../../packages/worker-agent/bin/credfwd-agent.js', import.meta.url));

test.before(async (t) => {
  t.context.tls = await createTlsIdentity();
});

test.beforeEach((t) => {
  t.context.children = [];
  t.context.peers = [];
});

test.afterEach.always(async (t) => {
  for (const child of t.context.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(t.context.peers.map((peer) => peer.close()));
});

async function started(t: { context: { tls: TlsIdentity; children: ChildProcess[]; peers: ProtocolPeer[] } }, args: string[]): Promise<{ child: ChildProcess; peer: ProtocolPeer; session: PeerSession; stderr: () => string }> {
  const peer = await ProtocolPeer.start({ tls: t.context.tls, delivery: 'none' });
  t.context.peers.push(peer);
  const child = spawn(process.execPath, [BIN, 'join', '--stdin', '--outlive-stdin', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.context.children.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  child.stdout!.resume();
  child.stdin!.write(`${formatJoinString(peer.join({ pin: t.context.tls.pin }))}\n`);
  return { child, peer, session: await peer.nextSession(), stderr: () => stderr };
}

async function sleeperOf(session: PeerSession, agentPid: number): Promise<number> {
  session.send({ type: 'run', taskId: 'sleeper', argv: ['sleep', '10022'] });
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [pid] = descendantPids(agentPid);
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error('the task did not start within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('credfwd-agent join --outlive-stdin keeps serving when stdin ends and its output pipes lose their reader (EPIPE), and reconnects', async (t) => {
  const { child, peer, session } = await started(t, ['--agent-id', 'outliving']);
  const sleeper = await sleeperOf(session, child.pid!);
  t.teardown(() => { if (isRunning(sleeper)) process.kill(sleeper, 'SIGKILL'); });
  // What sshd's death does to the agent: stdin ends, and nobody reads stdout or stderr any more.
  child.stdin!.end();
  child.stdout!.destroy();
  child.stderr!.destroy();
  // A dropped connection makes the agent log (to the dead pipe) and reconnect.
  session.ws.terminate();
  const again = await peer.nextSession();
  t.is(again.agentId, 'outliving');
  t.is(child.exitCode, null, 'the agent still runs');
  t.true(isRunning(sleeper), 'its task still runs');
  const exited = once(child, 'exit');
  again.ws.close(CloseCode.clusterRevoked);
  const [code] = await exited;
  t.is(code, 0);
  t.false(isRunning(sleeper), 'revocation stopped the task');
});

test('credfwd-agent join --outlive-stdin stops its tasks and exits 0 on a `stop` line', async (t) => {
  const { child, session, stderr } = await started(t, ['--agent-id', 'stopped']);
  const sleeper = await sleeperOf(session, child.pid!);
  t.teardown(() => { if (isRunning(sleeper)) process.kill(sleeper, 'SIGKILL'); });
  const closed = session.closed();
  const exited = once(child, 'close');
  child.stdin!.write('stop\n');
  const [code] = await exited;
  t.is(code, 0, stderr());
  t.regex(stderr(), /asked to stop on stdin/);
  t.is(await closed, CloseCode.normal);
  t.false(isRunning(sleeper), 'the task was stopped');
});

test('credfwd-agent join --outlive-stdin without --stdin is a usage error', async (t) => {
  const child = spawn(process.execPath, [BIN, 'join', '--outlive-stdin'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CREDFWD_JOIN: 'x' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.context.children.push(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  child.stdout.resume();
  const [code] = await once(child, 'close');
  t.is(code, 2);
  t.regex(stderr, /^error\[USAGE\]: --outlive-stdin applies to --stdin only/m);
});
