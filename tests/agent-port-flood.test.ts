import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import test from 'ava';
import { Coordinator } from '@credfwd/coordinator';
import { CloseCode, createExchangeKeyPair, parseJoinString } from '@credfwd/shared';
import { agentReady, spawnAgent } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { MiB, settledMemory } from './helpers/heap.ts';
import { createIamUser, startMoto } from './helpers/moto.ts';
import { RawAgent } from './helpers/raw-agent.ts';

// Loopback is one address for everyone, but Linux routes all of 127.0.0.0/8 to it: the attacker comes from its own.
const ATTACKER = '127.0.0.2';
const LIMITS = { maxPendingHandshakes: 200, maxFailedHandshakes: 20, failedHandshakeWindowMs: 60_000, handshakesPerSecond: 5_000, handshakeBurst: 5_000 };
const HANDSHAKE_TIMEOUT_MS = 2_000;
/** Retained heap growth allowed across the whole attack, once its sockets are gone: far below what 1,000 held sockets cost. */
const HEAP_GROWTH_BOUND = 16 * MiB;

/**
 * Resolves with each socket's fate, admitted (TLS finished) or dropped before
 * that, and the most admitted sockets open at once. The cap bounds the
 * latter: on a slow machine the first admitted sockets reach the handshake
 * deadline and close before the last ones connect, which frees their slots.
 */
async function openTlsSockets(port: number, count: number): Promise<{ admitted: number; dropped: number; peakOpen: number; allClosed: Promise<void> }> {
  let open = 0;
  let peakOpen = 0;
  const fates = await Promise.all(Array.from({ length: count }, () => new Promise<{ admitted: boolean; closed: Promise<void> }>((resolve) => {
    const socket = tlsConnect({ socket: tcpConnect({ host: '127.0.0.1', port, localAddress: ATTACKER }), rejectUnauthorized: false });
    let admitted = false;
    // Not events.once: a reset arrives as an 'error' first, which would reject it.
    const closed = new Promise<void>((done) => socket.once('close', () => {
      if (admitted) open -= 1;
      done();
    }));
    socket.on('error', () => undefined);
    // Bounded on this side too, so a connection stuck in a full accept queue cannot hang the test.
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS * 5, () => socket.destroy());
    socket.once('secureConnect', () => {
      admitted = true;
      open += 1;
      peakOpen = Math.max(peakOpen, open);
      resolve({ admitted: true, closed });
    });
    socket.once('close', () => resolve({ admitted: false, closed }));
  })));
  const admitted = fates.filter((f) => f.admitted).length;
  return { admitted, dropped: count - admitted, peakOpen, allClosed: Promise.all(fates.map((f) => f.closed)).then(() => undefined) };
}

/** One wrong-token attempt: closed with 4401, or refused at the upgrade with an HTTP status. */
async function wrongTokenAttempt(address: string, clusterId: string): Promise<string> {
  let raw: RawAgent;
  try {
    raw = await RawAgent.open(address, ATTACKER);
  } catch (err) {
    return /Unexpected server response: (\d+)/.exec((err as Error).message)?.[1] ?? (err as Error).message;
  }
  raw.send({ type: 'hello', v: 1, clusterId, agentId: 'brute', publicKey: createExchangeKeyPair().publicKey });
  await raw.next('challenge').catch(() => undefined);
  raw.send({ type: 'proof', mac: Buffer.alloc(32, 1).toString('base64url') });
  return String(await raw.closed);
}

test('1,000 unauthenticated sockets and a flood of wrong tokens: refused by cap and limit, the agent keeps refreshing, memory stays bounded', async (t) => {
  const moto = await startMoto();
  t.teardown(() => moto.stop());
  const launcher = await createIamUser(moto, 'flooded');
  process.env.AWS_ACCESS_KEY_ID = launcher.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = launcher.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
  const log = capturedLogger();
  const coordinator = await Coordinator.start({ logger: log.logger, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, limits: LIMITS });
  t.teardown(() => coordinator.close());
  const cluster = await coordinator.createCluster({ credentials: { roleArn: 'arn:aws:iam::123456789012:role/flooded', durationSeconds: 900 }, refreshIntervalSeconds: 1, region: 'us-east-1' });
  const legit = spawnAgent(cluster.joinString, 'legit');
  t.teardown(() => { legit.child.kill('SIGTERM'); });
  await agentReady(coordinator, cluster.id, 'legit');
  const before = settledMemory();
  let peakRss = before.rss;
  const sample = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 50);
  t.teardown(() => clearInterval(sample));

  /** Resolves once the legitimate agent holds credentials minted after this call. */
  const refreshReachesLegit = async (): Promise<number> => {
    const [, seq] = await once(coordinator, 'refreshed', {}) as [string, number];
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if ((coordinator.hub.agents(cluster.id).find((a) => a.agentId === 'legit')?.ackedSeq ?? -1) < seq) return;
        coordinator.hub.off('agent-ready', check);
        resolve();
      };
      coordinator.hub.on('agent-ready', check);
      check();
    });
    return seq;
  };

  const port = Number(coordinator.address.split(':')[1]);
  const sockets = await openTlsSockets(port, 1_000);
  t.log(`1,000 sockets: ${sockets.admitted} admitted (at most ${sockets.peakOpen} at once), ${sockets.dropped} dropped on accept`);
  t.true(sockets.peakOpen <= LIMITS.maxPendingHandshakes, 'never more unauthenticated connections at once than the cap');
  t.true(sockets.dropped > 0, 'connections beyond the cap are dropped');
  await refreshReachesLegit();
  await sockets.allClosed;
  t.is(log.text().match(/connection cap reached/g)?.length, 1, 'the flood is logged once, not per connection');

  const join = parseJoinString(cluster.joinString);
  const outcomes: string[] = [];
  const CONCURRENCY = 10;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (outcomes.length < 200) outcomes.push(await wrongTokenAttempt(coordinator.address, join.clusterId));
  }));
  const refused = outcomes.filter((o) => o === String(CloseCode.authFailed)).length;
  const limited = outcomes.filter((o) => o === '429').length;
  t.log(`${outcomes.length} wrong tokens: ${refused} refused with 4401, ${limited} refused at the upgrade with 429`);
  t.true(refused >= LIMITS.maxFailedHandshakes && refused < LIMITS.maxFailedHandshakes + CONCURRENCY, 'proofs checked only until the limit');
  t.is(refused + limited, outcomes.length);
  t.is(log.text().match(/too many failed handshakes/g)?.length, 1, 'the block is logged once per window');

  // The attacker's address is blocked; the agents' is not.
  const newcomer = spawnAgent(cluster.joinString, 'newcomer');
  t.teardown(() => { newcomer.child.kill('SIGTERM'); });
  await agentReady(coordinator, cluster.id, 'newcomer');
  const seq = await refreshReachesLegit();
  t.true(coordinator.hub.readyAgents(cluster.id).includes('legit'));
  t.false(log.text().includes(join.token), 'the join token is never logged');

  clearInterval(sample);
  const after = settledMemory();
  t.log(`coordinator process: heap ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, rss ${(before.rss / MiB).toFixed(1)} → peak ${(peakRss / MiB).toFixed(1)} → ${(after.rss / MiB).toFixed(1)} MiB; legit holds seq ${seq}`);
  t.true(after.heapUsed - before.heapUsed < HEAP_GROWTH_BOUND, `heap grew by ${((after.heapUsed - before.heapUsed) / MiB).toFixed(1)} MiB`);
});
