import test from 'ava';
import { Coordinator } from '@credfwd/coordinator';
import { parseJoinString } from '@credfwd/shared';
import { startAgent } from '@credfwd/worker-agent';
import { capturedLogger } from './helpers/captured-logger.ts';
import { freePort } from './helpers/free-port.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

const HEARTBEAT_MS = 1_000;
// Two intervals is the protocol's limit; the margin absorbs timer lateness on a busy machine.
const DETECTION_BOUND_MS = 2 * HEARTBEAT_MS + 750;

const FIRST = { accessKeyId: 'ASIAHALFOPENFIRST001', secretAccessKey: 'first-secret', sessionToken: 'first-token' };
const SECOND = { accessKeyId: 'ASIAHALFOPENSECOND01', secretAccessKey: 'second-secret', sessionToken: 'second-token' };

test('a half-open link is dropped by both ends within two heartbeats, and a push into it is not counted as delivered', async (t) => {
  const port = await freePort();
  const link = await startTcpProxy(`127.0.0.1:${port}`);
  t.teardown(() => link.stop());
  const coordinatorLog = capturedLogger();
  const coordinator = await Coordinator.start({ logger: coordinatorLog.logger, listen: `127.0.0.1:${port}`, publicAddress: link.address, heartbeatIntervalMs: HEARTBEAT_MS });
  t.teardown(() => coordinator.close());
  const expiration = new Date(Date.now() + 3_600_000);
  const cluster = await coordinator.createCluster({ credentials: 'forward', launcher: async () => ({ ...FIRST, expiration }) });
  const agentLog = capturedLogger();
  const agent = startAgent({
    join: parseJoinString(cluster.joinString),
    agentId: 'edge',
    logger: agentLog.logger,
    baseEnv: { PATH: process.env.PATH },
    heartbeatIntervalMs: HEARTBEAT_MS,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  t.teardown(() => agent.close());
  await agent.ready;
  const firstSeq = agent.credentials()?.seq ?? -1;

  const readySeqs: number[] = [];
  coordinator.hub.on('agent-ready', (_cluster, _agent, seq) => readySeqs.push(seq));
  const coordinatorNoticed = new Promise<number>((resolve) => coordinator.hub.once('agent-gone', () => resolve(Date.now())));
  const agentNoticed = agentLog.waitFor(/no heartbeat from coordinator/).then(() => Date.now());

  link.blackhole();
  const cutAt = Date.now();
  const pushedSeq = firstSeq + 100;
  await coordinator.hub.setCredentials(cluster.id, { seq: pushedSeq, credentials: SECOND, expiresAt: expiration });
  t.true((coordinator.hub.agents(cluster.id)[0]?.ackedSeq ?? -1) < pushedSeq, 'sent is not delivered');
  t.deepEqual(coordinator.hub.readyAgents(cluster.id), [], 'an agent without the current credentials is not ready');

  const [coordinatorAt, agentAt] = await Promise.all([coordinatorNoticed, agentNoticed]);
  t.log(`detected after ${coordinatorAt - cutAt} ms (coordinator) and ${agentAt - cutAt} ms (agent), heartbeat ${HEARTBEAT_MS} ms`);
  t.true(coordinatorAt - cutAt <= DETECTION_BOUND_MS, 'coordinator within two heartbeats');
  t.true(agentAt - cutAt <= DETECTION_BOUND_MS, 'agent within two heartbeats');
  t.false(readySeqs.includes(pushedSeq), 'no delivery was counted while the link was dead');
  t.is(agent.credentials()?.seq, firstSeq, 'the agent never got it');

  const delivered = new Promise<void>((resolve) => coordinator.hub.on('agent-ready', (_c, _a, seq) => { if (seq === pushedSeq) resolve(); }));
  link.heal();
  await delivered;
  t.is(agent.credentials()?.seq, pushedSeq, 'after reconnecting, the agent holds what it missed, acknowledged');
  t.is(agent.credentials()?.accessKeyIdMasked, 'ASIA…ND01');
});
