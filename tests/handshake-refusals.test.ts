import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import WebSocket from 'ws';
import { Coordinator, type ClusterRecord } from '@credfwd/coordinator';
import { createExchangeKeyPair, parseJoinString, formatJoinString } from '@credfwd/shared';
import { capturedLogger } from './helpers/captured-logger.ts';
import { agentReady, assertLegitStillServed, spawnAgent, type SpawnedAgent } from './helpers/agents.ts';

interface Context {
  coordinator: Coordinator;
  cluster: ClusterRecord;
  other: ClusterRecord;
  legit: SpawnedAgent;
  logs(): string;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const { logger, text } = capturedLogger();
  const coordinator = await Coordinator.start({ logger, handshakeTimeoutMs: 400 });
  const cluster = await coordinator.createCluster({ credentials: null });
  const other = await coordinator.createCluster({ credentials: null });
  const legit = spawnAgent(cluster.joinString, 'legit');
  await agentReady(coordinator, cluster.id, 'legit');
  t.context = { coordinator, cluster, other, legit, logs: text };
});

test.after.always(async (t) => {
  await t.context.coordinator?.close();
  await t.context.legit?.result;
});

function legitStillServed(t: ExecutionContext<Context>): Promise<void> {
  return assertLegitStillServed(t, t.context.coordinator, t.context.cluster.id);
}

function rawSocket(address: string): WebSocket {
  // Raw peers skip the pin: they exercise the coordinator, not the agent.
  return new WebSocket(`wss://${address}/v1/agent`, { rejectUnauthorized: false });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

function withToken(joinString: string, token: string): string {
  return formatJoinString({ ...parseJoinString(joinString), token });
}

test('an agent with a wrong join token is refused with 4401 and exits AGENT_AUTH_FAILED', async (t) => {
  const wrong = withToken(t.context.cluster.joinString, Buffer.alloc(32, 7).toString('base64url'));
  const agent = spawnAgent(wrong, 'intruder');
  const result = await agent.result;
  t.is(result.code, 1);
  t.regex(result.stderr, /error\[AGENT_AUTH_FAILED\]/);
  t.false(result.stderr.includes(parseJoinString(wrong).token), 'the token is never printed');
  t.regex(t.context.logs(), /"agentId":"intruder","closeCode":4401.*"msg":"agent refused"/);
  await legitStillServed(t);
});

test('cluster A\'s token does not open cluster B', async (t) => {
  const crossed = formatJoinString({ ...parseJoinString(t.context.other.joinString), token: parseJoinString(t.context.cluster.joinString).token });
  const result = await spawnAgent(crossed, 'cross').result;
  t.is(result.code, 1);
  t.regex(result.stderr, /error\[AGENT_AUTH_FAILED\]/);
  t.deepEqual(t.context.coordinator.hub.agents(t.context.other.id), []);
});

test('an agent given a wrong pin refuses the coordinator before saying hello', async (t) => {
  const info = parseJoinString(t.context.cluster.joinString);
  const wrongPin = formatJoinString({ ...info, pin: 'a'.repeat(64) });
  const result = await spawnAgent(wrongPin, 'pinned-wrong').result;
  t.is(result.code, 1);
  t.regex(result.stderr, /error\[AGENT_PIN_MISMATCH\]/);
  t.false(t.context.logs().includes('"agentId":"pinned-wrong"'), 'the coordinator never heard from it');
  await legitStillServed(t);
});

test('invalid JSON is closed with 4400', async (t) => {
  const ws = rawSocket(t.context.coordinator.address);
  await opened(ws);
  const code = closeCode(ws);
  ws.send('{not json');
  t.is(await code, 4400);
  await legitStillServed(t);
});

test('a frame of an unknown type or the wrong shape is closed with 4400', async (t) => {
  for (const frame of [{ type: 'bogus' }, { type: 'hello', v: 1, clusterId: 'x' }, { type: 'hello', v: 1, clusterId: 'c', agentId: 'a', publicKey: 'k', extra: true }, [1, 2, 3]]) {
    const ws = rawSocket(t.context.coordinator.address);
    await opened(ws);
    const code = closeCode(ws);
    ws.send(JSON.stringify(frame));
    t.is(await code, 4400, JSON.stringify(frame));
  }
  await legitStillServed(t);
});

test('protocol version 2 is closed with 4409', async (t) => {
  const ws = rawSocket(t.context.coordinator.address);
  await opened(ws);
  const code = closeCode(ws);
  ws.send(JSON.stringify({ type: 'hello', v: 2, clusterId: t.context.cluster.id, agentId: 'future', publicKey: createExchangeKeyPair().publicKey }));
  t.is(await code, 4409);
});

test('a wrong proof is closed with 4401 and a frame before hello with 4400', async (t) => {
  const ws = rawSocket(t.context.coordinator.address);
  await opened(ws);
  const challenge = new Promise<unknown>((resolve) => ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString('utf8')))));
  const code = closeCode(ws);
  ws.send(JSON.stringify({ type: 'hello', v: 1, clusterId: t.context.cluster.id, agentId: 'guesser', publicKey: createExchangeKeyPair().publicKey }));
  t.like(await challenge, { type: 'challenge' });
  ws.send(JSON.stringify({ type: 'proof', mac: Buffer.alloc(32).toString('base64url') }));
  t.is(await code, 4401);

  const early = rawSocket(t.context.coordinator.address);
  await opened(early);
  const earlyCode = closeCode(early);
  early.send(JSON.stringify({ type: 'ack', seq: 1 }));
  t.is(await earlyCode, 4400);
});

test('a handshake that never finishes is closed with 4408 at the deadline', async (t) => {
  const ws = rawSocket(t.context.coordinator.address);
  await opened(ws);
  t.is(await closeCode(ws), 4408);
  await legitStillServed(t);
});

test('a binary frame and an oversized frame are refused', async (t) => {
  const binary = rawSocket(t.context.coordinator.address);
  await opened(binary);
  const binaryCode = closeCode(binary);
  binary.send(Buffer.from([1, 2, 3]));
  t.is(await binaryCode, 4400);

  const big = rawSocket(t.context.coordinator.address);
  big.on('error', () => undefined);
  await opened(big);
  const bigCode = closeCode(big);
  big.send('x'.repeat(300 * 1024));
  t.is(await bigCode, 1009, 'ws closes with 1009 (message too big) past maxPayload');
  await legitStillServed(t);
});
