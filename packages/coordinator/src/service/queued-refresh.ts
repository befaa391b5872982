import type { ConnectionOptions } from 'bullmq';
import { errorMessage, type Logger } from '@credfwd/shared';
import type { RefreshJob, RefreshTimer } from '../core/index.ts';
import type { ClusterStore } from './cluster-store.ts';
import { DistributedRefresh } from './distributed-refresh.ts';

/** How often a replica plans every refresh again: see {@link QueuedRefreshOptions.sweepMs}. */
const REFRESH_SWEEP_MS = 60_000;

export interface QueuedRefreshOptions {
  store: ClusterStore;
  logger: Logger;
  /** BullMQ's own connection and key prefix. */
  connection: ConnectionOptions;
  prefix: string;
  /** The lifecycle's refresh, run by whichever replica takes a due job. */
  run(job: RefreshJob): Promise<void>;
  /**
   * How often every cluster's next refresh is planned again: a no-op for
   * refreshes already planned, and the repair for one whose planning a crash
   * cut short.
   */
  sweepMs?: number;
}

/**
 * The service's refresh timer: each refresh is one BullMQ job that exactly
 * one replica runs. A job that rejects is retried by BullMQ with the core's
 * backoff, or kept as failed (needs-attention) when retrying cannot help.
 */
export class QueuedRefresh implements RefreshTimer {
  readonly #options: QueuedRefreshOptions;
  readonly #queue: DistributedRefresh;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: QueuedRefreshOptions) {
    this.#options = options;
    this.#queue = new DistributedRefresh({ connection: options.connection, prefix: options.prefix, logger: options.logger, refresh: (job) => options.run(job) });
  }

  /** Plans every refresh now and again every sweep. */
  async start(): Promise<void> {
    await this.planAll();
    this.#sweep ??= setInterval(() => {
      this.planAll().catch((err: unknown) => this.#options.logger.warn({ reason: errorMessage(err) }, 'could not plan refreshes'));
    }, this.#options.sweepMs ?? REFRESH_SWEEP_MS);
    this.#sweep.unref();
  }

  /** Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.#queue.close();
  }

  /**
   * Plans the next refresh of every cluster the service refreshes. Job ids
   * are deterministic, so a planned (or finished, or failed) refresh is left
   * as it is; only a missing one is added.
   */
  async planAll(): Promise<void> {
    const { store } = this.#options;
    for (const id of await store.ids()) {
      const current = await store.current(id);
      if (current?.refreshAt) await this.plan({ clusterId: id, seq: current.seq }, current.refreshAt);
    }
  }

  /**
   * Plans a refresh, then takes it back if the cluster was deleted meanwhile:
   * the deleter removed the jobs it could see, and this one may have come
   * after, which would leave a job of a deleted cluster in Redis.
   */
  async plan(job: RefreshJob, at: Date): Promise<void> {
    await this.#queue.schedule(job, at.getTime() - Date.now());
    if (!(await this.#options.store.get(job.clusterId))) await this.#queue.remove(job);
  }

  /** BullMQ retries the job that rejected: when is its own draw from the same backoff. */
  retry(): undefined {
    return undefined;
  }

  cancel(job: RefreshJob): Promise<void> {
    return this.#queue.remove(job);
  }

  runNow(job: RefreshJob): Promise<void> {
    return this.#queue.runNow(job);
  }
}
