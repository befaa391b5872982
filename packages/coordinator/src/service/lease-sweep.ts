import { errorMessage, type Logger } from '@credfwd/shared';
import type { DeletedCluster } from './cluster-store.ts';

/** What the lease sweep needs from its replica. */
export interface LeaseSweepContext {
  logger: Logger;
  /** Some clusters whose lease has lapsed. */
  lapsed(): Promise<string[]>;
  /**
   * Deletes a cluster (revoking its agents, removing its refresh job) if its
   * lease is still lapsed; undefined when a renewal, a DELETE or another
   * replica's sweep came first.
   */
  deleteIfLapsed(clusterId: string): Promise<DeletedCluster | undefined>;
}

/** How often a replica looks for lapsed leases, by default: a lapsed cluster goes within about this long. */
export const LEASE_SWEEP_MS = 1_000;

/**
 * Deletes clusters whose launcher stopped renewing their lease. Every replica
 * runs one; the deletion itself is atomic in Redis, so when two sweeps race
 * for a cluster exactly one deletes it and logs it.
 */
export class LeaseSweep {
  readonly #context: LeaseSweepContext;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(context: LeaseSweepContext, intervalMs = LEASE_SWEEP_MS) {
    this.#context = context;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule();
  }

  /** Stops sweeping; a sweep in progress finishes its current cluster. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  // A timeout re-armed after each sweep, not an interval: a slow Redis never stacks sweeps up.
  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#sweep()
        .catch((err: unknown) => this.#context.logger.warn({ reason: errorMessage(err) }, 'lease sweep failed; trying again'))
        .finally(() => { if (!this.#closed) this.#schedule(); });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #sweep(): Promise<void> {
    for (const clusterId of await this.#context.lapsed()) {
      if (this.#closed) return;
      const deleted = await this.#context.deleteIfLapsed(clusterId);
      if (!deleted) continue;
      const renewedAt = deleted.leaseExpiredAt && deleted.leaseSeconds !== null ? deleted.leaseExpiredAt.getTime() - deleted.leaseSeconds * 1000 : undefined;
      this.#context.logger.warn({
        clusterId,
        leaseSeconds: deleted.leaseSeconds,
        sinceRenewalSeconds: renewedAt === undefined ? undefined : Math.round((Date.now() - renewedAt) / 1000),
      }, 'cluster deleted: its lease lapsed (its launcher stopped renewing it); its agents were revoked');
    }
  }
}
