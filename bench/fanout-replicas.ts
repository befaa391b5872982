import { sleep } from './lib/deadline.ts';
import { totalCpuMs } from './lib/proc-cpu.ts';
import { startReplicaService, type ReplicaHandle, type ReplicaService } from './lib/replica-service.ts';
import { startSimFleet, type SimFleet } from './lib/sim-fleet.ts';
import { summarise, type LatencySummary } from './lib/stats.ts';

/** One size of the distributed fan-out benchmark. */
export interface ReplicaFanoutSize {
  agents: number;
  /** Refreshes timed. */
  rounds: number;
  /** Refresh period: long enough for a round to finish before the next starts. */
  refreshIntervalSeconds: number;
  /** p99 target, ms, if the issue sets one for this size. */
  targetP99Ms?: number;
}

/** What one replica held and saw. */
export interface ReplicaShare {
  /** Agents connected to it when the timing began. */
  agents: number;
  /** Mint to the acks it received. */
  latency: LatencySummary;
}

/** One size's result: latencies over every agent, and per replica. */
export interface ReplicaFanoutResult {
  size: ReplicaFanoutSize;
  replicas: number;
  connected: number;
  failedToConnect: number;
  /** Why connections failed, a few distinct reasons, when any did. */
  connectFailures: string[];
  connectSeconds: number;
  /** Mint to ack, over every agent of every timed round, whichever replica it is connected to. */
  latency: LatencySummary;
  /** In the order the replicas started; the first created the cluster. */
  perReplica: ReplicaShare[];
  /** Acks missing from timed rounds (an agent that never acked a refresh). */
  missingAcks: number;
  /** Pushes a simulator could not open or check: must be 0. */
  badPushes: number;
  /** CPU time per agent per timed refresh, µs, of each kind of process. */
  cpuPerAgentUs: CpuShares;
}

/**
 * Where the machine's CPU went while the refreshes were timed, idle time
 * between them included: what bounds the last ack when every process shares
 * the same cores.
 */
export interface CpuShares {
  replicas: number;
  redis: number;
  simulators: number;
}

/** The service's replicas: two, as issue 7 asks. */
const REPLICAS = 2;
/** How often the replicas are asked how far a round has got; the times themselves are taken in the replicas. */
const POLL_MS = 200;

function sumCounts(counts: Array<Record<number, number>>): Map<number, number> {
  const total = new Map<number, number>();
  for (const perSeq of counts) for (const [seq, n] of Object.entries(perSeq)) total.set(Number(seq), (total.get(Number(seq)) ?? 0) + n);
  return total;
}

/**
 * Waits for `rounds` refreshes after the newest seq seen so far, each
 * acknowledged by `expected` agents across the replicas, or for the
 * timeout; returns the seqs of the rounds, complete or not.
 */
async function awaitRounds(replicas: ReplicaHandle[], rounds: number, expected: number, timeoutMs: number): Promise<number[]> {
  const before = Math.max(0, ...sumCounts(await Promise.all(replicas.map((r) => r.ackCounts()))).keys());
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const totals = sumCounts(await Promise.all(replicas.map((r) => r.ackCounts())));
    const after = [...totals.keys()].filter((seq) => seq > before).sort((a, b) => a - b);
    const complete = after.filter((seq) => (totals.get(seq) ?? 0) >= expected);
    if (complete.length >= rounds || performance.now() > deadline) return after.slice(0, rounds);
    await sleep(POLL_MS);
  }
}

/**
 * Mint to ack for each agent of each round, per replica. A round's mint is
 * the last AssumeRole the stub STS saw before the round's first ack: refreshes
 * are seconds apart and each round ends well before the next mint.
 */
async function latenciesPerReplica(service: ReplicaService, seqs: number[]): Promise<number[][]> {
  const times = await Promise.all(service.replicas.map((r) => r.ackTimes(seqs)));
  const mints = service.mints();
  const perReplica: number[][] = times.map(() => []);
  for (const seq of seqs) {
    const firstAck = Math.min(...times.flatMap((t) => t[seq] ?? []));
    const mintAt = mints.filter((m) => m < firstAck).at(-1);
    if (mintAt === undefined) throw new Error(`no mint seen before the acks of seq ${seq}`);
    times.forEach((t, i) => perReplica[i]!.push(...(t[seq] ?? []).map((at) => at - mintAt)));
  }
  return perReplica;
}

/**
 * Connects `size.agents` simulated agents to two replicas on a private Redis
 * (each agent starting with the replica its id picks, as real agents do) and
 * times refreshes, minted once by whichever replica runs the refresh job,
 * from the mint to each agent's ack at its replica.
 */
export async function runReplicaFanout(size: ReplicaFanoutSize): Promise<ReplicaFanoutResult> {
  let service: ReplicaService | undefined;
  let fleet: SimFleet | undefined;
  try {
    service = await startReplicaService({ replicas: REPLICAS, refreshIntervalSeconds: size.refreshIntervalSeconds });
    fleet = await startSimFleet({
      joinString: service.joinString,
      agents: size.agents,
      // About 70 handshakes a second, as the single-coordinator benchmark allows.
      connectTimeoutMs: 60_000 + size.agents * 15,
    });
    if (fleet.connected === 0) throw new Error(`no simulated agent could join: ${fleet.reasons.join('; ')}`);
    const held = await Promise.all(service.replicas.map((r) => r.readyCount()));
    const groups = { replicas: service.replicas.map((r) => r.pid), redis: [service.redisPid], simulators: fleet.pids };
    const cpuBefore = { replicas: totalCpuMs(groups.replicas), redis: totalCpuMs(groups.redis), simulators: totalCpuMs(groups.simulators) };
    const seqs = await awaitRounds(service.replicas, size.rounds, fleet.connected, (size.refreshIntervalSeconds + 30) * 1000 * size.rounds);
    const timedAcks = size.rounds * fleet.connected;
    const perAgentUs = (pids: number[], before: number): number => ((totalCpuMs(pids) - before) * 1000) / timedAcks;
    const cpuPerAgentUs = {
      replicas: perAgentUs(groups.replicas, cpuBefore.replicas),
      redis: perAgentUs(groups.redis, cpuBefore.redis),
      simulators: perAgentUs(groups.simulators, cpuBefore.simulators),
    };
    const perReplica = await latenciesPerReplica(service, seqs);
    const all = perReplica.flat();
    const badPushes = (await fleet.status()).reduce((sum, s) => sum + s.badPushes, 0);
    return {
      size,
      replicas: REPLICAS,
      connected: fleet.connected,
      failedToConnect: fleet.failed,
      connectFailures: fleet.reasons,
      connectSeconds: fleet.connectMs / 1000,
      latency: summarise(all),
      perReplica: perReplica.map((latencies, i) => ({ agents: held[i] ?? 0, latency: summarise(latencies) })),
      missingAcks: timedAcks - all.length,
      badPushes,
      cpuPerAgentUs,
    };
  } finally {
    // Simulators first, so the replicas are not busy with their goodbyes while they stop.
    await fleet?.close();
    await service?.close();
  }
}
