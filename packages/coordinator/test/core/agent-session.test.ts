import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import anyTest, { type TestFn } from 'ava';
import WebSocket from 'ws';
import { CloseCode, PROTOCOL_VERSION, createJoinToken, createLogger, openJson, tokenVerifier } from '@credfwd/shared';
import { AdmissionControl } from '../../src/core/admission-control.ts';
import { createAgentServer } from '../../src/core/agent-server.ts';
import { AgentSession, type AgentSessionContext, type SessionCluster } from '../../src/core/agent-session.ts';
import { createSelfSignedIdentity, type TlsIdentity } from '../../src/core/tls-identity.ts';
import { within } from '../../../../tests/helpers/deadline.ts';
import { HandshakePeer as Peer } from '../helpers/handshake-peer.ts';

// Every wait is bounded: a session that never answers fails with a reason, not by ava's timeout.
const WAIT_MS = 5_000;
const TOKEN = createJoinToken();
const CLUSTER: SessionCluster = { id: 'c1', verifier: tokenVerifier(TOKEN), delivery: 'env', environ: { SECRET_VAR: 'hunter2-environ' }, region: 'eu-west-1' };
// A second cluster the hub holds, whose token must not open the first.
const OTHER_TOKEN = createJoinToken();
const OTHER: SessionCluster = { ...CLUSTER, id: 'c2', verifier: tokenVerifier(OTHER_TOKEN) };
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const test = anyTest as TestFn<{ tls: TlsIdentity }>;
test.before(async (t) => {
  t.context = { tls: await createSelfSignedIdentity() };
});

interface Setup {
  handshakeTimeoutMs?: number;
  findCluster?: AgentSessionContext['findCluster'];
  agentIdRefusal?: string;
}

/**
 * One session on the real agent port (TLS, payload and fragment caps as in
 * production) with a context that records what the session tells its hub.
 */
async function connect(tls: TlsIdentity, setup: Setup = {}) {
  const events: string[] = [];
  const wakes = new Set<() => void>();
  const record = (event: string): void => {
    events.push(event);
    for (const wake of wakes) wake();
  };
  /** Resolves once the session has told the hub `event`. */
  const heard = (event: string): Promise<void> => within(new Promise<void>((resolve) => {
    const check = (): void => { if (events.includes(event)) { wakes.delete(check); resolve(); } };
    wakes.add(check);
    check();
  }), WAIT_MS, `the hub never heard ${event}`);
  const logger = createLogger({ name: 'test', level: 'silent' });
  const context: AgentSessionContext = {
    logger,
    handshakeTimeoutMs: setup.handshakeTimeoutMs ?? 5_000,
    findCluster: setup.findCluster ?? ((id) => [CLUSTER, OTHER].find((c) => c.id === id)),
    onHandshakeFailed: () => record('handshake-failed'),
    onRefused: (code) => record(`refused:${code}`),
    agentIdRefusal: () => setup.agentIdRefusal,
    onAuthenticated: () => record('authenticated'),
    onAck: (_s, seq) => record(`ack:${seq}`),
    onTaskMessage: (_s, m) => record(`task:${m.type}`),
    onClosed: () => record('closed'),
    onGone: () => undefined,
  };
  let accepted!: (session: AgentSession) => void;
  const session = new Promise<AgentSession>((resolve) => { accepted = resolve; });
  const { server, wss } = createAgentServer({
    tls, logger, handshakeTimeoutMs: 5_000, admission: new AdmissionControl(logger),
    onConnection: (socket, address, port) => accepted(new AgentSession(socket, address, port, context)),
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ws = new WebSocket(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/v1/agent`, { rejectUnauthorized: false });
  const peer = new Peer(ws, { clusterId: CLUSTER.id, agentId: 'a1', token: TOKEN }, WAIT_MS);
  await within(once(ws, 'open'), WAIT_MS, 'the agent port did not accept the upgrade');
  const close = async (): Promise<void> => {
    ws.terminate();
    wss.close();
    server.closeAllConnections();
    server.close();
  };
  return { peer, session: await within(session, WAIT_MS, 'no session for the connection'), events, heard, close };
}

test('hello, challenge, proof, welcome: the environ and every push are sealed to the key both sides derive', async (t) => {
  const { peer, session, events, heard, close } = await connect(t.context.tls);
  t.teardown(close);
  // Before the handshake there is no key: a push sends nothing and a run is refused.
  await session.pushCredentials(1, 3600, undefined, { accessKeyId: 'ASIAEXAMPLE0000000', secretAccessKey: SECRET_KEY, sessionToken: 'tok', expiration: new Date(Date.now() + 3_600_000).toISOString() });
  await t.throwsAsync(session.run('t1', ['true'], {}), { code: 'CLUSTER_NOT_FOUND' } as never);
  peer.hello();
  const key = await peer.prove();
  const welcome = await peer.next('welcome');
  t.deepEqual([welcome.delivery, welcome.region], ['env', 'eu-west-1']);
  t.deepEqual(await openJson(key, String(welcome.environ)), CLUSTER.environ);
  t.true(session.ready);
  t.is(session.agentId, 'a1');
  t.is(session.clusterId, 'c1');
  // The frames are ordered: had the early push been sent, it would sit before the welcome.
  t.deepEqual(peer.frames.map((f) => f.type), ['challenge', 'welcome']);

  await session.pushCredentials(7, 3600, 1800, { accessKeyId: 'ASIAEXAMPLE0000000', secretAccessKey: SECRET_KEY, sessionToken: 'tok', expiration: new Date(Date.now() + 3_600_000).toISOString() });
  const pushed = await peer.next('credentials');
  t.like(pushed, { seq: 7, remainingSeconds: 3600, refreshInSeconds: 1800 });
  t.like(await openJson(key, String(pushed.jwe)), { secretAccessKey: SECRET_KEY });
  t.false(peer.raw.some((text) => text.includes(SECRET_KEY) || text.includes('hunter2')), 'no secret travels in the clear');

  peer.send({ type: 'ack', seq: 7 });
  peer.send({ type: 'exit', taskId: 't1', code: 0, signal: null });
  await heard('task:exit');
  t.is(session.ackedSeq, 7);
  t.deepEqual(events, ['authenticated', 'ack:7', 'task:exit']);
});

test('a proof made from another token is refused with 4401 and no welcome', async (t) => {
  const { peer, events, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello();
  await peer.prove({ token: createJoinToken() });
  t.is(await peer.closeCode(), CloseCode.authFailed);
  t.deepEqual(peer.frames.map((f) => f.type), ['challenge']);
  t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.authFailed}`]);
});

test('a hello naming a cluster the hub does not know is refused with 4401 before any challenge', async (t) => {
  const { peer, events, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello({ clusterId: 'other-cluster' });
  t.is(await peer.closeCode(), CloseCode.authFailed);
  t.deepEqual(peer.frames, []);
  t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.authFailed}`]);
});

test('a hello for cluster c1 proved with the token of cluster c2 is refused with 4401', async (t) => {
  const { peer, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello();
  await peer.prove({ token: OTHER_TOKEN });
  t.is(await peer.closeCode(), CloseCode.authFailed);
  t.deepEqual(peer.frames.map((f) => f.type), ['challenge']);
});

test('a proof bound to another agent id than the hello\'s is refused with 4401', async (t) => {
  const { peer, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello();
  await peer.prove({ agentId: 'someone-else' });
  t.is(await peer.closeCode(), CloseCode.authFailed);
});

test('another protocol version is refused with 4409', async (t) => {
  const { peer, events, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello({ v: PROTOCOL_VERSION + 1 });
  t.is(await peer.closeCode(), CloseCode.versionMismatch);
  t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.versionMismatch}`]);
});

// Each of these breaks the frame order or the frame rules; every one closes with 4400 and counts once as a failed handshake.
const outOfOrder: Array<[string, (peer: Peer) => Promise<void>]> = [
  ['a proof before any hello', async (p) => p.send({ type: 'proof', mac: 'AAAA' })],
  ['an ack before any hello', async (p) => p.send({ type: 'ack', seq: 1 })],
  ['a second hello instead of the proof', async (p) => { p.hello(); await p.next('challenge'); p.hello(); }],
  ['task output while the proof is awaited', async (p) => { p.hello(); await p.next('challenge'); p.send({ type: 'output', taskId: 't', stream: 'stdout', data: 'aGk=' }); }],
  ['a frame that is not JSON', async (p) => p.ws.send('{not json')],
  ['a binary frame', async (p) => p.ws.send(Buffer.from(JSON.stringify({ type: 'hello' })), { binary: true })],
  ['a hello with an unknown field', async (p) => p.hello({ extra: 1 })],
  ['a hello whose agent id is over 128 characters', async (p) => p.hello({ agentId: 'a'.repeat(129) })],
];
for (const [what, send] of outOfOrder) {
  test(`${what} is refused with 4400`, async (t) => {
    const { peer, events, close } = await connect(t.context.tls);
    t.teardown(close);
    await send(peer);
    t.is(await peer.closeCode(), CloseCode.badFrame);
    t.false(peer.frames.some((f) => f.type === 'welcome'));
    t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.badFrame}`]);
  });
}

test('a frame sent while the cluster is being looked up is not taken for the proof', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const { peer, events, close } = await connect(t.context.tls, { findCluster: async (id) => { await gate; return id === CLUSTER.id ? CLUSTER : undefined; } });
  t.teardown(close);
  peer.hello();
  peer.send({ type: 'proof', mac: 'AAAA' });
  t.is(await peer.closeCode(), CloseCode.badFrame);
  release();
  await gate;
  t.deepEqual(peer.frames, [], 'no challenge once the lookup ends after the refusal');
  t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.badFrame}`]);
});

test('a hello after welcome is refused with 4400 and the hub hears the agent left', async (t) => {
  const { peer, events, heard, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello();
  await peer.prove();
  await peer.next('welcome');
  peer.hello();
  t.is(await peer.closeCode(), CloseCode.badFrame);
  await heard('closed');
  // A session that was ready is no failed handshake: the limiter must not block a good agent's address.
  t.deepEqual(events, ['authenticated', `refused:${CloseCode.badFrame}`, 'closed']);
});

test('a frame over the payload cap closes the socket (1009) and counts as a failed handshake', async (t) => {
  const { peer, events, close } = await connect(t.context.tls);
  t.teardown(close);
  peer.hello({ agentId: 'x'.repeat(300 * 1024) });
  t.is(await peer.closeCode(), 1009);
  t.deepEqual(events, ['handshake-failed']);
});

test('an agent silent past the handshake deadline is closed with 4408', async (t) => {
  const { peer, events, close } = await connect(t.context.tls, { handshakeTimeoutMs: 50 });
  t.teardown(close);
  t.is(await peer.closeCode(), CloseCode.handshakeTimeout);
  t.deepEqual(events, ['handshake-failed', `refused:${CloseCode.handshakeTimeout}`]);
});

test('an agent id another agent holds is refused with 4410 after a good proof, without a welcome', async (t) => {
  const { peer, events, close } = await connect(t.context.tls, { agentIdRefusal: 'held by another key' });
  t.teardown(close);
  peer.hello();
  await peer.prove();
  t.is(await peer.closeCode(), CloseCode.agentIdInUse);
  t.deepEqual(peer.frames.map((f) => f.type), ['challenge']);
  t.false(events.includes('authenticated'));
});

test('an unreachable registry asks the agent to retry (1013) without counting against its address', async (t) => {
  const { peer, events, close } = await connect(t.context.tls, { findCluster: async () => { throw new Error('redis down'); } });
  t.teardown(close);
  peer.hello();
  t.is(await peer.closeCode(), CloseCode.tryAgainLater);
  t.deepEqual(events, []);
});

test('a registry lost between hello and proof also asks the agent to retry (1013), not blaming its address (it was 4400)', async (t) => {
  let lookups = 0;
  const { peer, events, close } = await connect(t.context.tls, {
    findCluster: async (id) => {
      if (++lookups > 1) throw new Error('redis down');
      return [CLUSTER, OTHER].find((c) => c.id === id);
    },
  });
  t.teardown(close);
  peer.hello();
  await peer.prove();
  t.is(await peer.closeCode(), CloseCode.tryAgainLater);
  t.deepEqual(events, [], 'no failed handshake counted, nothing authenticated');
});
