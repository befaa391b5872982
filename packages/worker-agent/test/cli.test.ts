import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { CloseCode, createJoinToken, formatJoinString } from '@credfwd/shared';
import { ProtocolPeer, createTlsIdentity, type TlsIdentity } from './helpers/protocol-peer.ts';

const test = anyTest as TestFn<{ tls: TlsIdentity; dir: string; children: ChildProcess[]; peers: ProtocolPeer[] }>;

const BIN = fileURLToPath(new URL('../bin/credfwd-agent.js', import.meta.url));

interface Run {
  child: ChildProcess;
  result: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function runAgent(t: { context: { children: ChildProcess[] } }, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.context.children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
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
  t.false(Object.keys(env).some((name) => name.startsWith('CREDFWD_')));
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
