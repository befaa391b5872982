import type { AgentHub, AgentRoute, CurrentCredentials, RunOptions, SessionCluster, WorkerResult } from '../core/index.ts';

/** Frames go straight to the one hub that holds every agent of the embedded coordinator. */
export class DirectRoute implements AgentRoute {
  readonly #hub: AgentHub;

  constructor(hub: AgentHub) {
    this.#hub = hub;
  }

  async open(cluster: SessionCluster, current: CurrentCredentials | null): Promise<void> {
    this.#hub.addCluster(cluster);
    if (current) await this.#hub.setCredentials(cluster.id, current);
  }

  push(clusterId: string, current: CurrentCredentials): Promise<void> {
    return this.#hub.setCredentials(clusterId, current);
  }

  async revoke(clusterId: string): Promise<void> {
    this.#hub.removeCluster(clusterId);
  }

  run(clusterId: string, argv: string[], options: RunOptions): Promise<WorkerResult[]> {
    return this.#hub.run(clusterId, argv, options);
  }
}
