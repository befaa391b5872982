import { errorMessage, isCredfwdError, type Logger } from '@credfwd/shared';

/** What a launcher's lease renewal needs: the call to the service, and where to say how it went. */
export interface LeaseRenewalContext {
  clusterId: string;
  /** Lease length; renewals come three times per lease, so two can fail before it lapses. */
  leaseSeconds: number;
  logger: Logger;
  /** One renewal; rejects with CLUSTER_NOT_FOUND once the service has deleted the cluster. */
  renew(timeoutMs: number): Promise<unknown>;
}

/** A failed renewal is tried again this soon (or at the usual interval, if that is sooner). */
const RETRY_MS = 5_000;

/**
 * The launcher's side of a service cluster's lease: renews it every third of
 * its length for as long as the launcher runs. Failures are logged and
 * retried; a refusal because the cluster is gone is said plainly, once, and
 * ends the renewals.
 */
export class LeaseRenewal {
  readonly #context: LeaseRenewalContext;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(context: LeaseRenewalContext) {
    this.#context = context;
    this.#intervalMs = context.leaseSeconds * 1000 / 3;
  }

  start(): void {
    if (!this.#closed && !this.#timer) this.#schedule(this.#intervalMs);
  }

  /** Stops renewing; the lease then lapses unless the cluster is deleted first. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    // Nothing else to do while waiting: the launcher's own work keeps the process alive, not this timer.
    this.#timer = setTimeout(() => void this.#renew(), delayMs);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const { clusterId, logger } = this.#context;
    try {
      // A renewal that hangs must not outlast the lease it is meant to extend.
      await this.#context.renew(this.#intervalMs);
      if (!this.#closed) this.#schedule(this.#intervalMs);
    } catch (err) {
      if (this.#closed) return;
      if (isCredfwdError(err) && err.code === 'CLUSTER_NOT_FOUND') {
        this.#closed = true;
        logger.warn({ clusterId }, 'the service no longer has this cluster: its lease lapsed or someone deleted it, and its workers were revoked; launch again for a new one');
        return;
      }
      logger.warn({ clusterId, reason: errorMessage(err) }, 'could not renew the cluster\'s lease; retrying');
      this.#schedule(Math.min(this.#intervalMs, RETRY_MS));
    }
  }
}
