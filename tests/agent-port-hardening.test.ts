import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Coordinator, type ClusterRecord } from '@credfwd/coordinator';
import { CloseCode, MAX_PAYLOAD_BYTES, parseJoinString } from '@credfwd/shared';
import { agentReady, assertLegitStillServed, spawnAgent, type SpawnedAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { RawAgent } from './helpers/raw-agent.ts';

interface Context {
  coordinator: Coordinator;
  cluster: ClusterRecord;
  legit: SpawnedAgent;
  log: ReturnType<typeof capturedLogger>;
}
const test = anyTest as TestFn<Context>;

const HANDSHAKE_TIMEOUT_MS = 1_000;

test.before(async (t) => {
  const log = capturedLogger();
  const coordinator = await Coordinator.start({ logger: log.logger, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  const cluster = await coordinator.createCluster({ credentials: null });
  const legit = spawnAgent(cluster.joinString, 'legit');
  await agentReady(coordinator, cluster.id, 'legit');
  t.context = { coordinator, cluster, legit, log };
});

test.after.always(async (t) => {
  await t.context.coordinator?.close();
  await t.context.legit?.result;
});

function legitStillServed(t: ExecutionContext<Context>): Promise<void> {
  return assertLegitStillServed(t, t.context.coordinator, t.context.cluster.id);
}

function portOf(address: string): number {
  return Number(address.split(':')[1]);
}

/** Resolves once the server has closed (or reset) a raw TCP connection. */
function serverClosed(socket: Socket): Promise<void> {
  socket.on('error', () => undefined);
  socket.resume();
  return once(socket, 'close').then(() => undefined);
}

/** The first bytes a real TLS client sends: its ClientHello, caught by a plain TCP listener. */
async function captureClientHello(): Promise<Buffer> {
  const catcher = createServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const { port } = catcher.address() as { port: number };
  const received = new Promise<Buffer>((resolve) => catcher.once('connection', (socket) => socket.once('data', (chunk: Buffer) => {
    resolve(chunk);
    socket.destroy();
  })));
  const client = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  client.on('error', () => undefined);
  const hello = await received;
  client.destroy();
  catcher.close();
  return hello;
}

test('random bytes and truncated TLS are dropped, and the port keeps serving real agents', async (t) => {
  const port = portOf(t.context.coordinator.address);
  const garbage = tcpConnect({ host: '127.0.0.1', port });
  const garbageClosed = serverClosed(garbage);
  garbage.write(randomBytes(64 * 1024));
  await garbageClosed;

  const clientHello = await captureClientHello();
  const cut = tcpConnect({ host: '127.0.0.1', port });
  const cutClosed = serverClosed(cut);
  cut.end(clientHello.subarray(0, Math.floor(clientHello.length / 2)));
  await cutClosed;

  // A half-sent ClientHello and then silence: only the TLS handshake deadline ends it.
  const stalled = tcpConnect({ host: '127.0.0.1', port });
  const stalledClosed = serverClosed(stalled);
  stalled.write(clientHello.subarray(0, 10));
  await stalledClosed;

  await legitStillServed(t);
  const fresh = spawnAgent(t.context.cluster.joinString, 'after-garbage');
  await agentReady(t.context.coordinator, t.context.cluster.id, 'after-garbage');
  fresh.child.kill('SIGTERM');
  await fresh.result;
  t.pass();
});

test('a message split into 200,000 tiny fragments is refused with 1008 before it is buffered', async (t) => {
  const raw = await RawAgent.open(t.context.coordinator.address);
  // One byte each: 200 KB in all, under maxPayload, so only the fragment cap can stop it.
  const fragment = Buffer.from('x');
  for (let i = 0; i < 200_000 && raw.ws.readyState === raw.ws.OPEN; i += 1) raw.ws.send(fragment, { fin: false, binary: false });
  t.true(200_000 < MAX_PAYLOAD_BYTES);
  t.is(await raw.closed, 1008, 'ws: too many message fragments');
  await t.context.log.waitFor(/Too many message fragments.*agent socket error/);
  await legitStillServed(t);
});

test('a handshake proof replayed on a new connection is refused with 4401', async (t) => {
  const { coordinator } = t.context;
  const cluster = await coordinator.createCluster({ credentials: null });
  t.teardown(() => coordinator.closeCluster(cluster.id));
  const join = parseJoinString(cluster.joinString);
  const original = await RawAgent.open(coordinator.address);
  const recorded = await original.authenticate(join, 'eavesdropped');

  const replay = await RawAgent.open(coordinator.address);
  replay.send(recorded.hello);
  await replay.next('challenge');
  replay.send({ type: 'proof', mac: recorded.mac });
  t.is(await replay.closed, CloseCode.authFailed, 'the proof covers a fresh nonce and coordinator key, so an old one never verifies');
  t.deepEqual(coordinator.hub.agents(cluster.id).map((a) => a.agentId), ['eavesdropped'], 'the replay did not take over the session');
  t.false(t.context.log.text().includes(recorded.mac), 'the proof is never logged');
  original.ws.close();
});

test('an agent cannot report on another agent\'s task, nor ask the coordinator to run anything', async (t) => {
  const { coordinator, log } = t.context;
  const cluster = await coordinator.createCluster({ credentials: null });
  t.teardown(() => coordinator.closeCluster(cluster.id));
  const join = parseJoinString(cluster.joinString);
  const mallory = await RawAgent.open(coordinator.address);
  const alice = await RawAgent.open(coordinator.address);
  await mallory.authenticate(join, 'mallory');
  await alice.authenticate(join, 'alice');

  const results = coordinator.run(cluster.id, ['sh', '-c', 'echo mine']);
  const [malloryRun, aliceRun] = await Promise.all([mallory.next('run'), alice.next('run')]);
  mallory.send({ type: 'output', taskId: aliceRun.taskId, stream: 'stdout', data: Buffer.from('forged\n').toString('base64') });
  mallory.send({ type: 'exit', taskId: aliceRun.taskId, code: 99, signal: null });
  await log.waitFor(/"agentId":"mallory".*agent reported on a task it does not run/);
  alice.send({ type: 'output', taskId: aliceRun.taskId, stream: 'stdout', data: Buffer.from('mine\n').toString('base64') });
  alice.send({ type: 'exit', taskId: aliceRun.taskId, code: 0, signal: null });
  mallory.send({ type: 'exit', taskId: malloryRun.taskId, code: 0, signal: null });
  t.deepEqual((await results).map((r) => [r.worker, r.exitCode, r.stdout]), [['alice', 0, 'mine\n'], ['mallory', 0, '']]);

  // `run` is a coordinator frame: an agent sending one is speaking out of turn.
  mallory.send({ type: 'run', taskId: 'on-alice', argv: ['id'] });
  t.is(await mallory.closed, CloseCode.badFrame);
  t.deepEqual(coordinator.hub.agents(cluster.id).map((a) => a.agentId), ['alice']);
  alice.ws.close();
});

test('a handshake that stalls after the upgrade is closed with 4408 within the deadline', async (t) => {
  const raw = await RawAgent.open(t.context.coordinator.address);
  const openedAt = Date.now();
  t.is(await raw.closed, CloseCode.handshakeTimeout);
  // The deadline is protocol-defined; the slack absorbs timer lateness on a busy machine.
  t.true(Date.now() - openedAt < HANDSHAKE_TIMEOUT_MS + 1_000);
});
