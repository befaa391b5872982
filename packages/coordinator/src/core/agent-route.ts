import type { SessionCluster } from './agent-session.ts';
import type { CurrentCredentials } from './credential-push.ts';
import type { RunOptions } from './task-dispatch.ts';
import type { WorkerResult } from './worker-result.ts';

/**
 * How frames reach a cluster's agents wherever they are connected: straight
 * to the one hub embedded; in the service, over pub/sub to every replica,
 * each of which pushes to the agents it holds.
 */
export interface AgentRoute {
  /** Lets the cluster's agents join and hands them `current` once they do. */
  open(cluster: SessionCluster, current: CurrentCredentials | null): Promise<void>;
  /** Pushes newer credentials to every agent of the cluster. */
  push(clusterId: string, current: CurrentCredentials): Promise<void>;
  /** Revokes the cluster: its token stops working and its agents wipe their credentials. */
  revoke(clusterId: string): Promise<void>;
  /** Runs argv on every ready agent of the cluster; one result per worker. */
  run(clusterId: string, argv: string[], options: RunOptions): Promise<WorkerResult[]>;
}
