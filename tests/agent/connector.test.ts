import { once } from 'node:events';
import { createServer } from 'node:net';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { CloseCode, MAX_FRAGMENTS, createJoinToken, sealJson, type AgentMessage } from '@credfwd/shared';
import { closeFixtures, startPeer as peer, startTestAgent as agent, type AgentFixtureContext } from './helpers/agent-fixture.ts';
import { createTlsIdentity } from './helpers/protocol-peer.ts';
import { firstAddressIndex } from '../../packages/worker-agent/src/connector.ts';

const test = anyTest as TestFn<AgentFixtureContext>;

const CREDENTIALS = { accessKeyId: 'ASIAPEERTESTKEY00001', secretAccessKey: 'peer-secret-value', sessionToken: 'peer-session-token' };

test.before(async (t) => {
  t.context.tls = await createTlsIdentity();
});

test.beforeEach((t) => {
  t.context.peers = [];
  t.context.agents = [];
});

test.afterEach.always((t) => closeFixtures(t.context));

const isType = <T extends AgentMessage['type']>(type: T) => (f: AgentMessage): f is Extract<AgentMessage, { type: T }> => f.type === type;

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

test('a wrong pin gives AGENT_PIN_MISMATCH and no hello is sent', async (t) => {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: 'ab'.repeat(32) }));
  await t.throwsAsync(a.ready, { code: 'AGENT_PIN_MISMATCH' });
  await t.throwsAsync(a.done, { code: 'AGENT_PIN_MISMATCH' });
  t.deepEqual(coordinator.frames, []);
  t.is(coordinator.upgrades, 0, 'not even the websocket upgrade request left the agent');
  t.deepEqual(coordinator.closeCodes, [], 'and it did not retry');
});

test('with the right pin the agent completes the handshake, acks credentials and is ready', async (t) => {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  const session = await coordinator.nextSession();
  t.is(session.agentId, 'agent-1');
  t.is(a.credentials(), undefined);
  await session.sendCredentials(1, CREDENTIALS, 900);
  await a.ready;
  t.deepEqual(await session.next(isType('ack')), { type: 'ack', seq: 1 });
  const summary = a.credentials();
  t.is(summary?.seq, 1);
  t.is(summary?.accessKeyIdMasked, 'ASIA…0001');
  const logs = a.logs();
  t.false(logs.includes(CREDENTIALS.secretAccessKey));
  t.false(logs.includes(CREDENTIALS.sessionToken));
  t.false(logs.includes(coordinator.token));
});

test('in none mode the agent is ready on welcome', async (t) => {
  const coordinator = await peer(t, { delivery: 'none' });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  await a.ready;
  t.pass();
});

test('a task runs with the cluster environ, the credentials and its own sealed env', async (t) => {
  const coordinator = await peer(t, { environ: { DATASET: 's3://bucket/x' }, region: 'eu-central-1' });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }), { baseEnv: { PATH: process.env.PATH, AWS_PROFILE: 'launcher', CREDFWD_JOIN: 'leak' } });
  const session = await coordinator.nextSession();
  await session.sendCredentials(1, CREDENTIALS);
  await a.ready;
  session.send({
    type: 'run',
    taskId: 't1',
    argv: [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.env))'],
    env: await sealJson(session.key, { TASK_VAR: 'task' }),
  });
  const result = await session.taskResult('t1');
  t.is(result.code, 0);
  const env = JSON.parse(result.stdout) as Record<string, string>;
  t.is(env.DATASET, 's3://bucket/x');
  t.is(env.TASK_VAR, 'task');
  t.is(env.AWS_ACCESS_KEY_ID, CREDENTIALS.accessKeyId);
  t.is(env.AWS_REGION, 'eu-central-1');
  t.is(env.AWS_PROFILE, undefined);
  t.is(env.CREDFWD_JOIN, undefined);
});

test('in env mode without credentials a task is refused with 125', async (t) => {
  const coordinator = await peer(t);
  agent(t, coordinator.join({ pin: t.context.tls.pin }));
  const session = await coordinator.nextSession();
  session.send({ type: 'run', taskId: 't1', argv: ['true'] });
  const result = await session.taskResult('t1');
  t.is(result.code, 125);
  t.is(result.stderr, 'credfwd-agent: no unexpired credentials on this worker\n');
});

test('a wrong token is refused with 4401 and the agent stops with AGENT_AUTH_FAILED', async (t) => {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin, token: createJoinToken() }));
  await t.throwsAsync(a.done, { code: 'AGENT_AUTH_FAILED' });
  t.deepEqual(coordinator.closeCodes, [CloseCode.authFailed], 'no retry after a refusal');
});

test('a protocol version mismatch (4409) is fatal', async (t) => {
  const coordinator = await peer(t, { onHello: (ws) => ws.close(CloseCode.versionMismatch) });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  await t.throwsAsync(a.done, { code: 'PROTOCOL_MISMATCH' });
});

test('an agent id in use by another agent (4410) is fatal: AGENT_ID_IN_USE, with no retry (issue 10: two agents with one id kicked each other off for ever)', async (t) => {
  let hellos = 0;
  const coordinator = await peer(t, { onHello: (ws) => { hellos += 1; ws.close(CloseCode.agentIdInUse); } });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  await t.throwsAsync(a.done, { code: 'AGENT_ID_IN_USE', message: /another agent is connected to this cluster under the same agent id/ });
  t.is(hellos, 1);
});

/** A ready agent whose task `long` has started and runs until it is killed. */
async function agentRunningLongTask(t: ExecutionContext<AgentFixtureContext>) {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  const session = await coordinator.nextSession();
  await session.sendCredentials(1, CREDENTIALS);
  await a.ready;
  session.send({ type: 'run', taskId: 'long', argv: ['sh', '-c', 'echo started; exec sleep 1000'] });
  await session.next((f): f is AgentMessage => f.type === 'output' && Buffer.from(f.data, 'base64').includes('started'));
  return { a, session };
}

test('revocation (4403) wipes credentials, kills tasks and ends the agent cleanly', async (t) => {
  const { a, session } = await agentRunningLongTask(t);
  session.ws.close(CloseCode.clusterRevoked);
  t.deepEqual(await a.done, { reason: 'revoked' });
  t.is(a.credentials(), undefined);
  t.regex(a.logs(), /"taskId":"long".*"signal":"SIGTERM".*"msg":"task exited"/);
});

test('a malformed frame closes the connection with 4400 and the agent reconnects', async (t) => {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  const first = await coordinator.nextSession();
  first.ws.send('{"type":"credentials","seq":"one"}');
  t.is(await first.closed(), CloseCode.badFrame);
  const second = await coordinator.nextSession();
  await second.sendCredentials(1, CREDENTIALS);
  await a.ready;
  t.regex(a.logs(), /bad frame from coordinator/);
});

test('a message dribbled out in tiny fragments is refused with 1008 and the agent reconnects', async (t) => {
  const coordinator = await peer(t);
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }));
  const first = await coordinator.nextSession();
  for (let i = 0; i < MAX_FRAGMENTS + 1; i += 1) first.ws.send('x', { fin: false });
  t.is(await first.closed(), 1008);
  const second = await coordinator.nextSession();
  await second.sendCredentials(1, CREDENTIALS);
  await a.ready;
});

test('firstAddressIndex spreads agents across replicas and keeps each on its own', (t) => {
  const counts = [0, 0, 0];
  for (let i = 0; i < 300; i++) counts[firstAddressIndex(`worker-${i}`, 3)]! += 1;
  for (const count of counts) t.true(count > 60, `every replica gets a fair share: ${counts.join(', ')}`);
  t.is(firstAddressIndex('worker-7', 3), firstAddressIndex('worker-7', 3));
  t.is(firstAddressIndex('worker-7', 1), 0);
});

test('the agent fails over to the next address when the first does not answer', async (t) => {
  const coordinator = await peer(t);
  const closed = `127.0.0.1:${await closedPort()}`;
  // The agent starts at the address its id picks: put the dead one there.
  const addresses = firstAddressIndex('agent-1', 2) === 0 ? [closed, coordinator.address] : [coordinator.address, closed];
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin, addresses }));
  const session = await coordinator.nextSession();
  await session.sendCredentials(1, CREDENTIALS);
  await a.ready;
  t.regex(a.logs(), /ECONNREFUSED/);
});

test('the agent drops a connection that misses two heartbeats and reconnects', async (t) => {
  const coordinator = await peer(t);
  agent(t, coordinator.join({ pin: t.context.tls.pin }), { heartbeatIntervalMs: 100 });
  const first = await coordinator.nextSession();
  await first.closed();
  await coordinator.nextSession();
  t.pass();
});

test('pings keep the connection up', async (t) => {
  const coordinator = await peer(t, { pingIntervalMs: 50 });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }), { heartbeatIntervalMs: 400 });
  const session = await coordinator.nextSession();
  // Forty pings span two and a half silence limits: real events to wait on, not a sleep.
  const outcome = await new Promise<string>((resolve) => {
    let pongs = 0;
    session.ws.on('pong', () => {
      if (++pongs === 40) resolve('open');
    });
    session.ws.on('close', () => resolve('closed'));
  });
  t.is(outcome, 'open');
  await session.sendCredentials(1, CREDENTIALS);
  await a.ready;
});

test('a stall of the agent\'s own process is not taken for a silent coordinator (CI dropped a live connection)', async (t) => {
  const coordinator = await peer(t, { pingIntervalMs: 50 });
  const a = agent(t, coordinator.join({ pin: t.context.tls.pin }), { heartbeatIntervalMs: 200 });
  const session = await coordinator.nextSession();
  await session.sendCredentials(1, CREDENTIALS);
  await a.ready;
  let closed = false;
  session.ws.on('close', () => { closed = true; });
  // Blocks this process, agent and peer alike, for three silence limits, as a starved machine does.
  const stallUntil = Date.now() + 1_200;
  while (Date.now() < stallUntil);
  const outcome = await new Promise<string>((resolve) => {
    let pongs = 0;
    session.ws.on('pong', () => {
      if (++pongs === 20) resolve('open');
    });
    session.ws.on('close', () => resolve('closed'));
    if (closed) resolve('closed');
  });
  t.is(outcome, 'open', 'the pings queued during the stall were read before the agent judged the coordinator');
});

test('close() closes with 1000, kills tasks and ends with reason closed', async (t) => {
  const { a, session } = await agentRunningLongTask(t);
  const closed = session.closed();
  await a.close();
  await a.close();
  t.is(await closed, CloseCode.normal);
  t.deepEqual(await a.done, { reason: 'closed' });
  const exit = await session.next(isType('exit'));
  t.is(exit.signal, 'SIGTERM', 'the exit of a killed task still reached the coordinator');
});
