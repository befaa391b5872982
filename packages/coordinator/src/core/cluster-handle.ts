import type { WorkerResult } from './worker-result.ts';

/** What every launch hands back, on the embedded coordinator or through a service. */
export interface ClusterHandle<RunOptions> {
  id: string;
  /** Ids of the workers this launch started. */
  workers: string[];
  /** The hosts those workers run on (`localhost` for local workers), in launch order. */
  hosts: string[];
  /** A secret (it holds the join token): give it to remote agents via CREDFWD_JOIN or a file. */
  joinString: string;
  /** When the forwarded credentials expire, or null in null mode. */
  expiresAt: Date | null;
  /** Runs argv on every worker; one result per worker, never rejecting on a worker's failure. */
  run(argv: string[], options?: RunOptions): Promise<WorkerResult[]>;
  /** Ends the cluster (unless kept on a service) and stops the workers this launch started. Idempotent. */
  close(): Promise<void>;
}
