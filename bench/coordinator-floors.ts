import { startSimCluster } from './lib/sim-cluster.ts';
import { syntheticCredentials } from './lib/synthetic-credentials.ts';
import { withTlsConnections } from './lib/tls-connections.ts';

/** One size of the coordinator-against-floors benchmark. */
export interface CoordinatorFloorsSize {
  agents: number;
  /** Refreshes timed on each side. */
  rounds: number;
}

/** The coordinator's memory and CPU per agent beside the same measures of a bare `node:tls` server, in the same run. */
export interface CoordinatorFloorsResult {
  size: CoordinatorFloorsSize;
  connected: number;
  /** Coordinator RSS per agent after collecting all the garbage V8 can, once every agent has joined and holds its first credentials, bytes. */
  joinedPerAgentBytes: number;
  /** The same after the timed refreshes, bytes. */
  perAgentBytes: number;
  /** The part of it that is JavaScript heap. */
  perAgentHeapBytes: number;
  /** A bare node:tls server's RSS per connection once every connection has echoed one push-sized message, bytes. */
  tlsJoinedPerConnectionBytes: number;
  /** The same after its own pushes, bytes. */
  tlsPerConnectionBytes: number;
  /** Median over rounds of the coordinator's CPU per agent, mint to last ack, µs. */
  cpuPerAgentUs: number;
  /** Median over rounds of the coordinator's CPU per agent, mint to every push handed to its socket, µs. */
  pushCpuPerAgentUs: number;
  /** Median over rounds of the floor's CPU per connection: one seal and one TLS write of the frame, µs. */
  floorCpuPerAgentUs: number;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** The coordinator's side: simulated agents on a forward-mode cluster, memory before and after they join, then timed refreshes. */
async function coordinatorSide(size: CoordinatorFloorsSize): Promise<Omit<CoordinatorFloorsResult, 'tlsJoinedPerConnectionBytes' | 'tlsPerConnectionBytes' | 'floorCpuPerAgentUs'>> {
  let baseline = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
  const cluster = await startSimCluster({
    agents: size.agents,
    credentials: { kind: 'passthrough' },
    // No scheduled refresh within the run: the refreshes timed are started one after the other (drive), none races the joining.
    refreshIntervalSeconds: 3_600,
    connectTimeoutMs: 60_000 + size.agents * 15,
    beforeAgents: async (host) => {
      baseline = await host.memory();
    },
  });
  try {
    if (cluster.failed > 0) throw new Error(`${cluster.failed} simulated agents failed to connect: ${cluster.reasons.join('; ')}`);
    const joined = await cluster.memory();
    // Two untimed refreshes, as the floor has two untimed rounds: the collection before the reading gave back the young
    // generation's pages, and the first refreshes after it pay for growing it again.
    await cluster.measure({ rounds: 2, expected: cluster.agents, timeoutMs: 120_000, drive: true });
    const timed = await cluster.measure({ rounds: size.rounds, expected: cluster.agents, timeoutMs: 60_000 * size.rounds, drive: true });
    // Whatever the pushes left (buffers, memory freed but kept by the allocator) is counted, as the floor's is after its own pushes.
    const connected = await cluster.memory();
    const perAgentUs = (ms: number | undefined): number => ((ms ?? Number.NaN) * 1000) / cluster.agents;
    return {
      size,
      connected: cluster.agents,
      joinedPerAgentBytes: (joined.rss - baseline.rss) / cluster.agents,
      perAgentBytes: (connected.rss - baseline.rss) / cluster.agents,
      perAgentHeapBytes: (connected.heapUsed - baseline.heapUsed) / cluster.agents,
      cpuPerAgentUs: median(timed.rounds.map((r) => perAgentUs(r.cpuMs))),
      pushCpuPerAgentUs: median(timed.rounds.map((r) => perAgentUs(r.pushCpuMs))),
    };
  } finally {
    await cluster.close();
  }
}

/**
 * The floors: a bare node:tls server that takes `connections` and seals and
 * writes one push to each of them, `rounds` times; its CPU per push and its
 * RSS per connection once they are done.
 */
async function floors(connections: number, rounds: number): Promise<{ cpuPerConnectionUs: number; joinedRssPerConnectionBytes: number; rssPerConnectionBytes: number }> {
  return withTlsConnections(connections, async (server, before) => {
    const accepted = await server.call<number>('accepted');
    const joined = await server.call<number>('rss');
    const perRound: number[] = [];
    // Rounds -1 and 0 are not timed: they compile the seal and write paths, which the coordinator's agents exercised when they joined.
    for (let seq = -1; seq <= rounds; seq++) {
      const { expiration, ...rest } = syntheticCredentials();
      const credentials = JSON.stringify({ ...rest, expiration: expiration.toISOString() });
      const cpuUs = await server.call<number>('push', { credentials, seq });
      if (seq > 0) perRound.push(cpuUs / accepted);
    }
    const after = await server.call<number>('rss');
    return { cpuPerConnectionUs: median(perRound), joinedRssPerConnectionBytes: (joined - before) / accepted, rssPerConnectionBytes: (after - before) / accepted };
  });
}

/** Runs both sides for one size. */
export async function runCoordinatorFloors(size: CoordinatorFloorsSize): Promise<CoordinatorFloorsResult> {
  const coordinator = await coordinatorSide(size);
  const floor = await floors(size.agents, size.rounds);
  return { ...coordinator, tlsJoinedPerConnectionBytes: floor.joinedRssPerConnectionBytes, tlsPerConnectionBytes: floor.rssPerConnectionBytes, floorCpuPerAgentUs: floor.cpuPerConnectionUs };
}
