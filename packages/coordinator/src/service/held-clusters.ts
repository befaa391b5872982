import { errorMessage, type Logger } from '@credfwd/shared';
import type { AgentHub, CurrentCredentials, SessionCluster } from '../core/index.ts';
import type { ClusterStore } from './cluster-store.ts';

/** A cluster as the store has it, ready for the hub. */
export interface LoadedCluster {
  cluster: SessionCluster;
  current: CurrentCredentials | undefined;
}

/**
 * The clusters this replica's hub lets agents join, kept in step with the
 * store: every replica holds every cluster, since an agent may dial any.
 */
export class HeldClusters {
  readonly #store: ClusterStore;
  readonly #hub: AgentHub;
  readonly #logger: Logger;
  /** Expiry of the credentials this replica serves per cluster it holds. */
  readonly #expiries = new Map<string, Date>();
  /** Null-mode clusters this replica holds: they have no expiry but do have agents. */
  readonly #nullClusters = new Set<string>();

  constructor(store: ClusterStore, hub: AgentHub, logger: Logger) {
    this.#store = store;
    this.#hub = hub;
    this.#logger = logger;
  }

  /** A cluster with its current credentials, read from the store (undefined once deleted). */
  async load(clusterId: string): Promise<LoadedCluster | undefined> {
    const record = await this.#store.get(clusterId);
    const secret = record && (await this.#store.secret(clusterId));
    if (!record || !secret) return undefined;
    const current = await this.#store.current(clusterId);
    if (current) this.#expiries.set(clusterId, current.expiresAt);
    else this.#nullClusters.add(clusterId);
    return { cluster: { id: clusterId, verifier: record.verifier, delivery: record.delivery, environ: secret.environ, region: record.region }, current };
  }

  /** Loads a cluster into the hub, or its newer credentials, pushing them to its agents here. */
  async hold(clusterId: string): Promise<void> {
    const found = await this.load(clusterId);
    if (!found) return;
    const { cluster, current } = found;
    if (!this.#hub.hasCluster(cluster.id)) this.#hub.addCluster(cluster);
    if (current) {
      this.#hub.setCredentials(cluster.id, current).catch((err: unknown) => this.#logger.error({ clusterId: cluster.id, reason: errorMessage(err) }, 'credentials push failed'));
    }
  }

  /** Holds every cluster in the store and forgets those gone from it; idempotent. */
  async resync(): Promise<void> {
    const ids = new Set(await this.#store.ids());
    for (const id of this.#ids()) if (!ids.has(id)) this.forget(id);
    for (const id of ids) await this.hold(id);
  }

  /** Revokes a cluster's agents on this replica. */
  forget(clusterId: string): void {
    this.#expiries.delete(clusterId);
    this.#nullClusters.delete(clusterId);
    this.#hub.removeCluster(clusterId);
  }

  /** Agents connected to this replica, across its clusters. */
  connectedAgents(): number {
    return this.#ids().reduce((n, id) => n + this.#hub.agents(id).length, 0);
  }

  /** Seconds until the first credentials this replica serves expire; undefined when it serves none. */
  earliestExpirySeconds(now: number): number | undefined {
    const earliest = Math.min(...[...this.#expiries.values()].map((d) => d.getTime()));
    return Number.isFinite(earliest) ? Math.round((earliest - now) / 1000) : undefined;
  }

  #ids(): string[] {
    return [...this.#expiries.keys(), ...this.#nullClusters];
  }
}
