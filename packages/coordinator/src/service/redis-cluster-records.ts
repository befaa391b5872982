import type { Logger } from '@credfwd/shared';
import {
  createMinter,
  refreshStatusFromJson,
  refreshStatusToJson,
  type ClusterRecords,
  type CurrentCredentials,
  type RefreshStatus,
  type RefreshableCluster,
} from '../core/index.ts';
import type { ClusterStore, DeletedCluster, PublicClusterRecord, SecretClusterRecord } from './cluster-store.ts';
import type { ReplicaMetrics } from './replica-metrics.ts';

/** A cluster as the service keeps it: what anyone with Redis access may read, and what is sealed. */
export interface ServiceCluster {
  public: PublicClusterRecord;
  secret: SecretClusterRecord;
}

/**
 * The service's clusters for the lifecycle: the {@link ClusterStore} in
 * Redis, shared by every replica. A refresh's minter is made again from the
 * sealed spec each time (any replica may run it), its STS calls counted.
 * Only role clusters are refreshed: forwarded credentials are the launcher's.
 */
export class RedisClusterRecords implements ClusterRecords<ServiceCluster> {
  readonly #store: ClusterStore;
  readonly #metrics: ReplicaMetrics;
  readonly #logger: Logger;

  constructor(store: ClusterStore, metrics: ReplicaMetrics, logger: Logger) {
    this.#store = store;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  nextSeq(): Promise<number> {
    return this.#store.nextSeq();
  }

  create(record: ServiceCluster, current: CurrentCredentials | null, status: RefreshStatus | undefined): Promise<void> {
    return this.#store.create(record.public, record.secret, current, status && refreshStatusToJson(status));
  }

  async refreshable(clusterId: string): Promise<RefreshableCluster<ServiceCluster> | undefined> {
    const record = await this.#store.get(clusterId);
    const secret = record && (await this.#store.secret(clusterId));
    if (!record || !secret || secret.spec.kind !== 'role') return undefined;
    const minter = createMinter(secret.spec, {
      clusterId, durationSeconds: record.durationSeconds, region: record.region, logger: this.#logger, ...(record.principal ? { principal: record.principal } : {}),
    });
    if (!minter) return undefined;
    return { record: { public: record, secret }, minter: this.#metrics.counted(minter), intervalSeconds: record.refreshIntervalSeconds ?? undefined };
  }

  current(clusterId: string): Promise<CurrentCredentials | undefined> {
    return this.#store.current(clusterId);
  }

  saveCurrent(clusterId: string, current: CurrentCredentials, status: RefreshStatus): Promise<boolean> {
    return this.#store.saveCurrent(clusterId, current, refreshStatusToJson(status));
  }

  async refreshStatus(clusterId: string): Promise<RefreshStatus | undefined> {
    const json = await this.#store.refreshStatus(clusterId);
    return json && refreshStatusFromJson(json);
  }

  saveRefreshStatus(clusterId: string, status: RefreshStatus): Promise<void> {
    return this.#store.saveRefreshStatus(clusterId, refreshStatusToJson(status));
  }

  /** Deletes by hand (a lapsed lease is deleted by the store's own test of it, then retired). */
  delete(clusterId: string): Promise<DeletedCluster | undefined> {
    return this.#store.delete(clusterId);
  }
}
