import { join } from 'node:path';
import type { HotFunction } from './lib/cpu-profile.ts';
import { sleep, until, withDeadline } from './lib/deadline.ts';
import { residentBytes, spawnRealAgent } from './lib/real-agent.ts';
import { startSimCluster, type SimCluster } from './lib/sim-cluster.ts';
import { summarise, type LatencySummary } from './lib/stats.ts';

/** One cluster size of the fan-out benchmark. */
export interface FanoutSize {
  agents: number;
  /** Refreshes timed. */
  rounds: number;
  /** Refresh period: long enough for a round to finish before the next starts. */
  refreshIntervalSeconds: number;
  /** p99 target, ms, if the issue sets one for this size. */
  targetP99Ms?: number;
  /** Also measure coordinator memory per agent and a real agent's idle RSS. */
  memory: boolean;
  /** Profile one extra refresh and report its hottest functions. */
  profile: boolean;
}

export interface FanoutResult {
  size: FanoutSize;
  connected: number;
  failedToConnect: number;
  /** Why connections failed, a few distinct reasons, when any did. */
  connectFailures: string[];
  connectSeconds: number;
  /** Mint to ack, over every agent of every timed round. */
  latency: LatencySummary;
  /** Acks missing from timed rounds (an agent that never acked a refresh). */
  missingAcks: number;
  /** Median over rounds of mint to every push handed to its socket, ms. */
  pushedMs: number;
  /** Median over rounds of the coordinator's CPU time per agent for one refresh, µs. */
  cpuPerAgentUs: number;
  /** Pushes a simulator could not open or check: must be 0. */
  badPushes: number;
  memory?: MemoryResult;
  hot?: HotFunction[];
  profilePath?: string;
}

export interface MemoryResult {
  coordinatorBaselineBytes: number;
  coordinatorBytes: number;
  perAgentBytes: number;
  /** The part of perAgentBytes that is JavaScript heap; the rest is native (OpenSSL, buffers). */
  perAgentHeapBytes: number;
  /** VmRSS of a real credfwd-agent holding credentials, after it has been idle a while. */
  agentIdleBytes: number;
}

/**
 * How long a real agent sits idle before its RSS is read. V8's memory reducer
 * returns the pages of start-up garbage about 8 to 15 s after the last
 * activity (an agent read at 5 s was 1.6 MiB above the same agent at 15 s,
 * where it then stayed for the 90 s watched): read earlier, RSS tells how the
 * agent started, not what it costs a worker while it idles.
 */
export const AGENT_IDLE_MS = 20_000;

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function agentIdleRss(cluster: SimCluster, expectedBefore: number): Promise<number> {
  const agent = spawnRealAgent(cluster.joinString, 'bench-real-agent');
  try {
    await withDeadline(until(async () => (await cluster.readyCount()) > expectedBefore), 30_000, 'a real agent joining');
    await sleep(AGENT_IDLE_MS);
    const pid = agent.child.pid;
    if (pid === undefined) throw new Error('the real agent has no pid');
    return await residentBytes(pid);
  } finally {
    await agent.stop();
  }
}

/** Connects `size.agents` simulated agents and times refreshes from mint to each ack. */
export async function runFanout(size: FanoutSize, profileDir: string): Promise<FanoutResult> {
  let baseline = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  const cluster = await startSimCluster({
    agents: size.agents,
    credentials: { kind: 'passthrough' },
    refreshIntervalSeconds: size.refreshIntervalSeconds,
    // About 70 handshakes a second: a busy 2-core machine manages several times that.
    connectTimeoutMs: 60_000 + size.agents * 15,
    beforeAgents: async (host) => {
      baseline = await host.memory();
    },
  });
  try {
    const connected = size.memory ? await cluster.memory() : baseline;
    const roundTimeoutMs = (size.refreshIntervalSeconds + 30) * 1000;
    // The reading's collection gave back the young generation's pages; the first refresh after it, untimed, grows them again.
    if (size.memory) await cluster.measure({ rounds: 1, expected: cluster.agents, timeoutMs: roundTimeoutMs });
    const timed = await cluster.measure({ rounds: size.rounds, expected: cluster.agents, timeoutMs: roundTimeoutMs * size.rounds });
    const profilePath = size.profile ? join(profileDir, `coordinator-refresh-${size.agents}.cpuprofile`) : undefined;
    const profiled = profilePath ? await cluster.measure({ rounds: 1, expected: cluster.agents, timeoutMs: roundTimeoutMs, profilePath }) : undefined;
    const latencies = timed.rounds.flatMap((r) => r.latencies);
    const badPushes = (await cluster.simStatus()).reduce((sum, s) => sum + s.badPushes, 0);
    const memory = size.memory ? {
      coordinatorBaselineBytes: baseline.rss,
      coordinatorBytes: connected.rss,
      perAgentBytes: (connected.rss - baseline.rss) / cluster.agents,
      perAgentHeapBytes: (connected.heapUsed - baseline.heapUsed) / cluster.agents,
      agentIdleBytes: await agentIdleRss(cluster, cluster.agents),
    } : undefined;
    return {
      size,
      connected: cluster.agents,
      failedToConnect: cluster.failed,
      connectFailures: cluster.reasons,
      connectSeconds: cluster.connectMs / 1000,
      latency: summarise(latencies),
      missingAcks: size.rounds * cluster.agents - latencies.length,
      pushedMs: median(timed.rounds.map((r) => r.pushedMs ?? Number.NaN)),
      cpuPerAgentUs: median(timed.rounds.map((r) => ((r.cpuMs ?? Number.NaN) * 1000) / cluster.agents)),
      badPushes,
      ...(memory ? { memory } : {}),
      ...(profiled?.hot ? { hot: profiled.hot, profilePath } : {}),
    };
  } finally {
    await cluster.close();
  }
}
