import type { AgentRoute, CurrentCredentials, RunOptions, SessionCluster, WorkerResult } from '../core/index.ts';
import type { HeldClusters } from './held-clusters.ts';
import type { ReplicaBus } from './replica-bus.ts';
import type { ReplicaRuns } from './replica-runs.ts';

/**
 * Frames to a cluster's agents wherever they are connected: announced on the
 * bus, on which every replica (this one included) loads the news from Redis
 * into its hub and pushes to the agents it holds; runs are dispatched and
 * collected across replicas by {@link ReplicaRuns}.
 */
export class PubSubRoute implements AgentRoute {
  readonly #held: HeldClusters;
  readonly #bus: ReplicaBus;
  readonly #runs: ReplicaRuns;

  constructor(held: HeldClusters, bus: ReplicaBus, runs: ReplicaRuns) {
    this.#held = held;
    this.#bus = bus;
    this.#runs = runs;
  }

  /** Holds it here at once (the creator's answer may send agents straight back to this replica), then tells the others. */
  async open(cluster: SessionCluster): Promise<void> {
    await this.#held.hold(cluster.id);
    await this.#bus.publish({ type: 'created', clusterId: cluster.id });
  }

  async push(clusterId: string, current: CurrentCredentials): Promise<void> {
    await this.#bus.publish({ type: 'credentials', clusterId, seq: current.seq });
  }

  async revoke(clusterId: string): Promise<void> {
    this.#held.forget(clusterId);
    await this.#bus.publish({ type: 'revoked', clusterId });
  }

  run(clusterId: string, argv: string[], options: RunOptions): Promise<WorkerResult[]> {
    const { env, cwd, timeoutMs, onRefresh } = options;
    return this.#runs.run(clusterId, {
      argv,
      ...(env ? { env } : {}),
      ...(cwd ? { cwd } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(onRefresh ? { onRefresh } : {}),
    });
  }
}
