import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { createSelfSignedIdentity } from '@credfwd/coordinator';
import { createJoinToken, createLogger, type JoinInfo } from '@credfwd/shared';
import { startAgent, type Agent } from '@credfwd/worker-agent';
import { freePort } from './helpers/free-port.ts';
import { startService, type Service } from './helpers/service.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/restartable-coordinator.ts', import.meta.url));
const AGENTS = 500;
/** The restarted coordinator's handshake cap, set low so 500 agents must queue behind it. */
const RATE = { handshakesPerSecond: 100, handshakeBurst: 50 };
/** The bound for a fleet to hold current credentials again after a restart. */
const RECOVERY_BOUND_MS = 180_000;

interface Generation {
  service: Service;
  /** When each handshake was admitted past the rate cap, and when each agent finished one, from the coordinator's own log. */
  admittedAt: number[];
  joinedAt: number[];
  rateCapLines: number;
}

async function startGeneration(env: Record<string, string>, seq: number, limits: object): Promise<Generation> {
  const seen = { admittedAt: [] as number[], joinedAt: [] as number[], rateCapLines: 0 };
  const service = await startService({
    command: process.execPath,
    args: ['--', FIXTURE],
    ready: /^ready$/,
    graceMs: 2_000,
    env: { ...env, FIXTURE_SEQ: String(seq), FIXTURE_LIMITS: JSON.stringify(limits) },
  });
  if (service.child.stderr) {
    createInterface({ input: service.child.stderr }).on('line', (line) => {
      const time = (): number => (JSON.parse(line) as { time: number }).time;
      if (line.includes('"msg":"handshake admitted"')) seen.admittedAt.push(time());
      else if (line.includes('"msg":"agent joined"')) seen.joinedAt.push(time());
      else if (line.includes('handshake rate cap reached')) seen.rateCapLines += 1;
    });
  }
  return Object.assign(seen, { service });
}

/** Most events in any window of `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let start = 0, end = 0; end < sorted.length; end += 1) {
    while (sorted[end]! - sorted[start]! >= windowMs) start += 1;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** Polls a condition until it holds or the deadline passes; a bound, not a wait. */
async function until(condition: () => boolean, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

test('500 agents reconnect after a coordinator restart: jittered backoff, handshakes under the cap, all current again by seq', async (t) => {
  const tls = await createSelfSignedIdentity();
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-restart-'));
  writeFileSync(join(dir, 'cert.pem'), tls.cert, { mode: 0o600 });
  writeFileSync(join(dir, 'key.pem'), tls.key, { mode: 0o600 });
  const port = await freePort();
  const joinInfo: JoinInfo = { addresses: [`127.0.0.1:${port}`], clusterId: 'c-restarted', token: createJoinToken(), pin: tls.pin };
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    FIXTURE_LISTEN: joinInfo.addresses[0]!,
    FIXTURE_TLS_CERT: join(dir, 'cert.pem'),
    FIXTURE_TLS_KEY: join(dir, 'key.pem'),
    FIXTURE_CLUSTER_ID: joinInfo.clusterId,
    FIXTURE_CLUSTER_TOKEN: joinInfo.token,
  };

  const first = await startGeneration(env, 1, {});
  t.teardown(() => first.service.stop());
  // Agents are quiet: 500 of them reporting every retry would drown the test's output.
  const quiet = createLogger({ name: 'agent', level: 'error', destination: new Writable({ write: (_chunk, _encoding, done) => done() }) });
  const agents: Agent[] = Array.from({ length: AGENTS }, (_, i) => startAgent({
    join: joinInfo,
    agentId: `w${i}`,
    logger: quiet,
    baseEnv: { PATH: process.env.PATH },
    // No backoff option: the agents' real one (250 ms doubling to 2 min, ±20 %) is under test.
  }));
  t.teardown(() => Promise.all(agents.map((a) => a.close())).then(() => undefined));
  await Promise.all(agents.map((a) => a.ready));
  t.true(agents.every((a) => a.credentials()?.seq === 1));

  first.service.child.kill('SIGKILL');
  await first.service.stop();
  const restartedAt = Date.now();
  const second = await startGeneration(env, 2, RATE);
  t.teardown(() => second.service.stop());

  const recovered = await until(() => agents.every((a) => a.credentials()?.seq === 2), RECOVERY_BOUND_MS);
  const recoveryMs = Date.now() - restartedAt;
  const current = agents.filter((a) => a.credentials()?.seq === 2).length;
  const busiest = busiestWindow(second.admittedAt, 1_000);
  t.log(`${current}/${AGENTS} agents on seq 2 after ${recoveryMs} ms; ${second.admittedAt.length} handshakes admitted, at most ${busiest} in any second (cap ${RATE.handshakeBurst} burst + ${RATE.handshakesPerSecond}/s); ${second.rateCapLines} throttled log lines about 503s`);
  t.true(recovered, 'every agent holds the restarted coordinator\'s credentials, by seq');
  t.true(recoveryMs < RECOVERY_BOUND_MS);
  t.true(second.joinedAt.length >= AGENTS, 'every agent completed a handshake with the restarted coordinator');
  t.true(busiest <= RATE.handshakeBurst + RATE.handshakesPerSecond, 'the handshake rate stayed under the cap');
  t.true(second.rateCapLines >= 1, 'the cap was reached, so agents were turned away with 503 and backed off');
});
