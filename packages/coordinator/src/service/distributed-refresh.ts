import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { errorMessage, isCredfwdError, type Logger } from '@credfwd/shared';
import { backoffDelay, type RefreshJob } from '../core/index.ts';

export interface DistributedRefreshOptions {
  connection: ConnectionOptions;
  /** BullMQ's key prefix, under the service's Redis prefix. */
  prefix: string;
  logger: Logger;
  /** Does the refresh; a thrown retryable CredfwdError is retried with backoff, any other stops the job. */
  refresh(job: RefreshJob): Promise<void>;
}

const QUEUE = 'refresh';
// Retryable failures (throttling, outages) are retried for as long as they last, as the embedded scheduler does.
const ATTEMPTS = 100_000;
// A failed job is kept, so that the sweep re-adding a job id it believes missing gets the failed one back
// (needs-attention stays until POST refresh) rather than a retry loop. A completed one is removed at once:
// its cluster has moved on to a newer seq (a re-added old job would find the seq stale and mint nothing),
// or was deleted, and a deleted cluster leaves no job behind.
const KEEP_FAILED_SECONDS = 24 * 3600;

/** The deterministic job id of a refresh: two replicas scheduling it make one job. */
export function refreshJobId(job: RefreshJob): string {
  return `refresh-${job.clusterId}-${job.seq}`;
}

/**
 * Cluster refreshes on a BullMQ queue with a worker in every replica: each
 * refresh is one delayed job, so exactly one replica mints it, and a replica
 * that dies mid-job leaves it to BullMQ's stalled-job recovery.
 */
export class DistributedRefresh {
  readonly #queue: Queue<RefreshJob>;
  readonly #worker: Worker<RefreshJob>;

  constructor(options: DistributedRefreshOptions) {
    const { connection, prefix, logger } = options;
    this.#queue = new Queue<RefreshJob>(QUEUE, { connection, prefix });
    this.#worker = new Worker<RefreshJob>(QUEUE, async (job: Job<RefreshJob>) => {
      try {
        await options.refresh(job.data);
      } catch (err) {
        const retryable = isCredfwdError(err) ? err.retryable : true;
        throw retryable ? err : new UnrecoverableError(errorMessage(err));
      }
    }, {
      connection,
      prefix,
      concurrency: 8,
      // A mint takes well under a second; short locks let another replica take over a killed replica's job in seconds, not BullMQ's default 30.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      settings: { backoffStrategy: (attemptsMade: number) => Math.round(backoffDelay(attemptsMade - 1, Math.random) * 1000) },
    });
    this.#worker.on('error', (err) => logger.warn({ reason: err.message }, 'refresh worker error; BullMQ reconnects by itself'));
    this.#queue.on('error', (err) => logger.warn({ reason: err.message }, 'refresh queue error; BullMQ reconnects by itself'));
  }

  /** Plans a refresh `delayMs` from now; a no-op if that job already exists. */
  async schedule(job: RefreshJob, delayMs: number): Promise<void> {
    await this.#queue.add('refresh', job, {
      jobId: refreshJobId(job),
      delay: Math.max(0, Math.round(delayMs)),
      attempts: ATTEMPTS,
      backoff: { type: 'custom' },
      removeOnComplete: true,
      removeOnFail: { age: KEEP_FAILED_SECONDS },
    });
  }

  /**
   * Removes the refresh job of a deleted cluster, whatever its state. One
   * that is running now cannot be removed; it finds its cluster gone,
   * completes without minting, and is removed as every completed job is.
   */
  async remove(job: RefreshJob): Promise<void> {
    await this.#queue.remove(refreshJobId(job));
  }

  /**
   * Runs a refresh now: a failed one (needs-attention) is retried, a planned
   * one is brought forward, a missing one is added without delay. The way to
   * resume after a person has fixed what made STS refuse.
   */
  async runNow(job: RefreshJob): Promise<void> {
    const existing = await this.#queue.getJob(refreshJobId(job));
    const state = await existing?.getState();
    if (existing && state === 'failed') await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    else if (existing && state === 'delayed') await existing.promote();
    else if (!existing) await this.schedule(job, 0);
  }

  /** Stops taking jobs (an active one finishes) and closes the connections. Idempotent. */
  async close(): Promise<void> {
    await this.#worker.close();
    await this.#queue.close();
  }
}
