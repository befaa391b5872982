import { CredfwdError, errorMessage, type Logger } from '@credfwd/shared';
import type { Minted } from './minter.ts';
import { backoffDelay, nextRefreshDelay } from './refresh-schedule.ts';
import { failedRefreshStatus, refreshErrorOf, refreshedStatus, type RefreshError, type RefreshStatus } from './refresh-status.ts';

/** What a scheduler needs of its cluster. */
export interface RefreshContext {
  clusterId: string;
  logger: Logger;
  mint(): Promise<Minted>;
  /** Makes these the cluster's credentials and pushes them; `refreshAt` is when the next push is planned. */
  publish(minted: Minted, refreshAt: Date): Promise<void>;
  /** Told of every failed refresh, after it is logged. */
  onFailure(error: RefreshError): void;
}

export interface RefreshOptions {
  /** Refresh at least this often (seconds). */
  intervalSeconds?: number;
  now?: () => number;
  random?: () => number;
}

/**
 * Keeps one cluster's credentials fresh: one mint in flight at a time, at
 * half life. On a retryable failure (throttling, 5xx, no answer) it backs off
 * with full jitter; on one that needs a person (AccessDenied, ExpiredToken…)
 * it stops rather than hammer STS, as the EKS Pod Identity Agent does. Either
 * way the current credentials stay in use until they expire.
 */
export class RefreshScheduler {
  readonly #context: RefreshContext;
  readonly #intervalSeconds: number | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #status: RefreshStatus | undefined;
  #inFlight: Promise<RefreshError | undefined> | undefined;

  constructor(context: RefreshContext, options: RefreshOptions = {}) {
    this.#context = context;
    this.#intervalSeconds = options.intervalSeconds;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Publishes the first credentials and plans their refresh. */
  async start(first: Minted): Promise<void> {
    await this.#adopt(first);
  }

  /** Undefined before the first credentials are published. */
  status(): RefreshStatus | undefined {
    return this.#status && { ...this.#status };
  }

  /**
   * Refreshes now (the timer's plan is dropped), sharing a refresh already in
   * flight; the way to resume after `needs-attention` once a person has fixed
   * the cause. Rejects with the refresh's error, which is also logged and
   * reported as any failed refresh is.
   */
  async refreshNow(): Promise<void> {
    if (this.#closed) throw new CredfwdError('CLUSTER_CLOSED', `cluster ${this.#context.clusterId} is closed`, 'launch a new cluster');
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#status) this.#status.nextRefreshAt = undefined;
    const error = await this.#refreshOnce();
    if (error) throw new CredfwdError(error.code, error.message, error.hint, { retryable: error.retryable });
  }

  /** Stops refreshing; a mint in flight is discarded. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #adopt(minted: Minted): Promise<void> {
    const remaining = (minted.expiresAt.getTime() - this.#now()) / 1000;
    const delay = nextRefreshDelay(remaining, this.#random, this.#intervalSeconds);
    this.#status = refreshedStatus(minted.expiresAt, new Date(this.#now()), this.#schedule(delay));
    await this.#context.publish(minted, new Date(this.#now() + delay * 1000));
  }

  /** Plans the next refresh; when it will be, unless closed. */
  #schedule(delaySeconds: number): Date | undefined {
    if (this.#closed) return undefined;
    this.#timer = setTimeout(() => void this.#refreshOnce(), delaySeconds * 1000);
    this.#timer.unref();
    return new Date(this.#now() + delaySeconds * 1000);
  }

  /** One refresh at a time: a second caller waits for the first, and shares its error. */
  #refreshOnce(): Promise<RefreshError | undefined> {
    this.#inFlight ??= this.#refresh().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  #failed(err: unknown): RefreshError {
    const { clusterId, logger } = this.#context;
    const error = refreshErrorOf(err, new Date(this.#now()));
    const failures = this.#status?.consecutiveFailures ?? 0;
    const delay = error.retryable ? backoffDelay(failures, this.#random) : undefined;
    const expiresInSeconds = this.#status ? Math.round((this.#status.expiresAt.getTime() - this.#now()) / 1000) : 0;
    const fields = { clusterId, code: error.code, reason: error.message, hint: error.hint, attempt: failures + 1, expiresInSeconds };
    if (delay === undefined) {
      logger.error(fields, 'credential refresh failed and will not be retried until the cause is fixed; current credentials stay in use until they expire');
    } else {
      logger.error({ ...fields, retryInSeconds: Math.round(delay * 10) / 10 }, 'credential refresh failed; current credentials stay in use until they expire');
    }
    const nextRefreshAt = delay === undefined ? undefined : this.#schedule(delay);
    if (this.#status) this.#status = failedRefreshStatus(this.#status, error, nextRefreshAt);
    this.#context.onFailure(error);
    return error;
  }

  async #refresh(): Promise<RefreshError | undefined> {
    const { clusterId, logger } = this.#context;
    let minted: Minted;
    try {
      minted = await this.#context.mint();
    } catch (err) {
      return this.#closed ? undefined : this.#failed(err);
    }
    if (this.#closed) return undefined;
    const failures = this.#status?.consecutiveFailures ?? 0;
    if (failures > 0) logger.info({ clusterId, afterFailures: failures }, 'credential refresh recovered');
    try {
      await this.#adopt(minted);
    } catch (err) {
      logger.error({ clusterId, reason: errorMessage(err) }, 'credentials push failed');
    }
    return undefined;
  }
}
