import type { CurrentCredentials } from './credential-push.ts';
import type { Minter } from './minter.ts';
import type { RefreshStatus } from './refresh-status.ts';

/** What a refresh needs of a cluster the deployment refreshes. */
export interface RefreshableCluster<R> {
  /** The deployment's own record, handed back to its hooks. */
  record: R;
  minter: Minter;
  /** Refresh at least this often (seconds); undefined: at half life. */
  intervalSeconds: number | undefined;
}

/** What a deletion leaves for the lifecycle to clean up: the seq its pending refresh is planned under. */
export interface DeletedRecord {
  /** Undefined when the cluster held no credentials (null mode). */
  seq: number | undefined;
}

/**
 * Where a deployment keeps its clusters, their current credentials, their
 * refresh status and the sequence numbers of credentials: in memory for the
 * embedded coordinator, in Redis for the service. `R` is the deployment's
 * own record; the lifecycle only carries it.
 */
export interface ClusterRecords<R> {
  /** A fresh sequence number, unique across the deployment. */
  nextSeq(): Promise<number>;
  /** Registers a cluster with its first credentials (none in null mode) and, when refreshed, its status, in one step. */
  create(record: R, current: CurrentCredentials | null, status: RefreshStatus | undefined): Promise<void>;
  /** Undefined when the cluster is gone, or is not refreshed by this deployment (null mode, forwarded credentials). */
  refreshable(clusterId: string): Promise<RefreshableCluster<R> | undefined>;
  current(clusterId: string): Promise<CurrentCredentials | undefined>;
  /** Stores newer credentials with their status in one step; false when the cluster is gone (deleted meanwhile). */
  saveCurrent(clusterId: string, current: CurrentCredentials, status: RefreshStatus): Promise<boolean>;
  refreshStatus(clusterId: string): Promise<RefreshStatus | undefined>;
  /** Records a failed refresh's status; nothing once the cluster is gone. */
  saveRefreshStatus(clusterId: string, status: RefreshStatus): Promise<void>;
  /** Removes a cluster; undefined if there was none. */
  delete(clusterId: string): Promise<DeletedRecord | undefined>;
}
