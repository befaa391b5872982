import type { ClusterRecords, CurrentCredentials, DeletedRecord, Minter, RefreshStatus, RefreshableCluster } from '../core/index.ts';

/** What the embedded coordinator keeps of a cluster besides its credentials: the minter stays in memory, with the launcher's identity. */
export interface KeptCluster {
  id: string;
  /** Null in null mode. */
  minter: Minter | null;
  intervalSeconds: number | undefined;
}

interface Entry<R> {
  record: R;
  current: CurrentCredentials | undefined;
  status: RefreshStatus | undefined;
}

/**
 * The embedded coordinator's clusters, in a `Map`: one process, so the
 * sequence numbers are a counter. Besides {@link ClusterRecords}' promises it
 * answers synchronously, for `Coordinator.status`.
 */
export class MemoryClusterRecords<R extends KeptCluster> implements ClusterRecords<R> {
  readonly #entries = new Map<string, Entry<R>>();
  #seq = 0;

  async nextSeq(): Promise<number> {
    return ++this.#seq;
  }

  async create(record: R, current: CurrentCredentials | null, status: RefreshStatus | undefined): Promise<void> {
    this.#entries.set(record.id, { record, current: current ?? undefined, status });
  }

  async refreshable(clusterId: string): Promise<RefreshableCluster<R> | undefined> {
    const record = this.#entries.get(clusterId)?.record;
    return record?.minter ? { record, minter: record.minter, intervalSeconds: record.intervalSeconds } : undefined;
  }

  async current(clusterId: string): Promise<CurrentCredentials | undefined> {
    return this.#entries.get(clusterId)?.current;
  }

  async saveCurrent(clusterId: string, current: CurrentCredentials, status: RefreshStatus): Promise<boolean> {
    const entry = this.#entries.get(clusterId);
    if (!entry) return false;
    entry.current = current;
    entry.status = status;
    return true;
  }

  async refreshStatus(clusterId: string): Promise<RefreshStatus | undefined> {
    return this.statusOf(clusterId);
  }

  async saveRefreshStatus(clusterId: string, status: RefreshStatus): Promise<void> {
    const entry = this.#entries.get(clusterId);
    if (entry) entry.status = status;
  }

  async delete(clusterId: string): Promise<DeletedRecord | undefined> {
    const entry = this.#entries.get(clusterId);
    if (!entry) return undefined;
    this.#entries.delete(clusterId);
    return { seq: entry.current?.seq };
  }

  /** A cluster's record, now. */
  get(clusterId: string): R | undefined {
    return this.#entries.get(clusterId)?.record;
  }

  /** A copy of a cluster's refresh status, now. */
  statusOf(clusterId: string): RefreshStatus | undefined {
    const status = this.#entries.get(clusterId)?.status;
    return status && { ...status };
  }

  ids(): string[] {
    return [...this.#entries.keys()];
  }
}
