import { isCredfwdError, type ErrorCode, type Logger } from '@credfwd/shared';
import type { Minted } from './minter.ts';
import { MAX_BACKOFF_SECONDS, backoffDelay, nextRefreshDelay } from './refresh-schedule.ts';

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
  at: Date;
}

/** Where a cluster's refresh loop stands. */
export interface RefreshStatus {
  expiresAt: Date;
  lastRefreshAt: Date;
  nextRefreshAt: Date | undefined;
  consecutiveFailures: number;
  lastError: RefreshError | undefined;
}

/**
 * Failures a person must fix (log in again, grant access) are retried at the
 * slowest pace rather than hammered; throttling and outages back off from 1 s.
 */
const NEEDS_A_PERSON: ReadonlySet<string> = new Set(['STS_ACCESS_DENIED', 'STS_EXPIRED_TOKEN', 'STS_INVALID_TOKEN', 'STS_REGION_DISABLED', 'LAUNCHER_NO_CREDENTIALS']);

/**
 * Keeps one cluster's credentials fresh: one mint in flight at a time, at
 * half life; on failure, backoff with full jitter while the current
 * credentials stay in use until they expire.
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
      expiresAt: this.#current.expiresAt,
      lastRefreshAt: this.#lastRefreshAt,
      nextRefreshAt: this.#nextRefreshAt,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
    };
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
    this.#timer = setTimeout(() => void this.#refresh(), delaySeconds * 1000);
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    const { clusterId, logger } = this.#context;
    let minted: Minted;
    try {
      minted = await this.#context.mint();
    } catch (err) {
      if (this.#closed) return;
      const code: ErrorCode = isCredfwdError(err) ? err.code : 'STS_FAILED';
      const message = err instanceof Error ? err.message : String(err);
      this.#lastError = { code, message, at: new Date(this.#now()) };
      const delay = NEEDS_A_PERSON.has(code) ? MAX_BACKOFF_SECONDS : backoffDelay(this.#failures, this.#random);
      this.#failures++;
      const expiresInSeconds = this.#current ? Math.round((this.#current.expiresAt.getTime() - this.#now()) / 1000) : 0;
      logger.error({ clusterId, code, reason: message, attempt: this.#failures, retryInSeconds: Math.round(delay * 10) / 10, expiresInSeconds }, 'credential refresh failed; current credentials stay in use until they expire');
      this.#schedule(delay);
      this.#context.onFailure(this.#lastError);
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
