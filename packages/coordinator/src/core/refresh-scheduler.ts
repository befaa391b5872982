import { CredfwdError, isCredfwdError, type ErrorCode, type Logger } from '@credfwd/shared';
import type { Minted } from './minter.ts';
import { backoffDelay, nextRefreshDelay } from './refresh-schedule.ts';

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

/** A refresh failure as the cluster shows it. */
export interface RefreshError {
  code: ErrorCode;
  message: string;
  hint: string;
  /** False when retrying cannot help until a person acts (access denied, an expired login). */
  retryable: boolean;
  at: Date;
}

/** How a failed refresh is shown and retried, embedded or distributed alike. */
export function refreshErrorOf(err: unknown, at: Date): RefreshError {
  const known = isCredfwdError(err) ? err : undefined;
  return {
    code: known?.code ?? 'STS_FAILED',
    message: err instanceof Error ? err.message : String(err),
    hint: known?.hint ?? 'check network access to STS',
    // An error credfwd did not classify may be passing; retrying keeps the cluster alive.
    retryable: known?.retryable ?? true,
    at,
  };
}

/**
 * Where a cluster's refresh loop stands: `scheduled` on plan, `backing-off`
 * after retryable failures, `needs-attention` after a failure that retrying
 * cannot fix, when no further refresh is planned until {@link RefreshScheduler.refreshNow}.
 */
export type RefreshState = 'scheduled' | 'backing-off' | 'needs-attention';

/** Where a cluster's refresh loop stands. */
export interface RefreshStatus {
  state: RefreshState;
  expiresAt: Date;
  lastRefreshAt: Date;
  nextRefreshAt: Date | undefined;
  consecutiveFailures: number;
  lastError: RefreshError | undefined;
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
  #current: Minted | undefined;
  #lastRefreshAt = new Date(0);
  #nextRefreshAt: Date | undefined;
  #failures = 0;
  #lastError: RefreshError | undefined;
  #inFlight: Promise<void> | undefined;

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

  status(): RefreshStatus | undefined {
    if (!this.#current) return undefined;
    return {
      state: this.#state(),
      expiresAt: this.#current.expiresAt,
      lastRefreshAt: this.#lastRefreshAt,
      nextRefreshAt: this.#nextRefreshAt,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
    };
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
    this.#nextRefreshAt = undefined;
    await this.#refreshOnce();
    if (this.#lastError && this.#failures > 0) {
      throw new CredfwdError(this.#lastError.code, this.#lastError.message, this.#lastError.hint, { retryable: this.#lastError.retryable });
    }
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
    this.#current = minted;
    this.#lastRefreshAt = new Date(this.#now());
    this.#schedule(delay);
    await this.#context.publish(minted, new Date(this.#now() + delay * 1000));
  }

  #schedule(delaySeconds: number): void {
    if (this.#closed) return;
    this.#nextRefreshAt = new Date(this.#now() + delaySeconds * 1000);
    this.#timer = setTimeout(() => void this.#refreshOnce(), delaySeconds * 1000);
    this.#timer.unref();
  }

  #state(): RefreshState {
    if (this.#failures === 0) return 'scheduled';
    return this.#lastError?.retryable === false ? 'needs-attention' : 'backing-off';
  }

  /** One refresh at a time: a second caller waits for the first. */
  #refreshOnce(): Promise<void> {
    this.#inFlight ??= this.#refresh().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  #failed(err: unknown): void {
    const { clusterId, logger } = this.#context;
    this.#lastError = refreshErrorOf(err, new Date(this.#now()));
    const { code, retryable } = this.#lastError;
    const delay = retryable ? backoffDelay(this.#failures, this.#random) : undefined;
    this.#failures++;
    const expiresInSeconds = this.#current ? Math.round((this.#current.expiresAt.getTime() - this.#now()) / 1000) : 0;
    const fields = { clusterId, code, reason: this.#lastError.message, hint: this.#lastError.hint, attempt: this.#failures, expiresInSeconds };
    if (delay === undefined) {
      this.#nextRefreshAt = undefined;
      logger.error(fields, 'credential refresh failed and will not be retried until the cause is fixed; current credentials stay in use until they expire');
    } else {
      logger.error({ ...fields, retryInSeconds: Math.round(delay * 10) / 10 }, 'credential refresh failed; current credentials stay in use until they expire');
      this.#schedule(delay);
    }
    this.#context.onFailure(this.#lastError);
  }

  async #refresh(): Promise<void> {
    const { clusterId, logger } = this.#context;
    let minted: Minted;
    try {
      minted = await this.#context.mint();
    } catch (err) {
      if (!this.#closed) this.#failed(err);
      return;
    }
    if (this.#closed) return;
    if (this.#failures > 0) logger.info({ clusterId, afterFailures: this.#failures }, 'credential refresh recovered');
    this.#failures = 0;
    this.#lastError = undefined;
    try {
      await this.#adopt(minted);
    } catch (err) {
      logger.error({ clusterId, reason: err instanceof Error ? err.message : String(err) }, 'credentials push failed');
    }
  }
}
