import { TokenBucket, type Logger, type TokenBucketOptions } from '@credfwd/shared';

/** Refusals the endpoint answers, and logs one by one, per second after a burst. */
export const DEFAULT_REFUSAL_LIMIT: TokenBucketOptions = { ratePerSecond: 50, burst: 100 };
const SUMMARY_WINDOW_MS = 1_000;

/**
 * Bounds the cost of requests the credentials endpoint refuses: within the
 * limit each refusal gets its own status and log line; beyond it the request
 * gets 429 and is counted into one log line a second, so a flood can neither
 * drown the agent in work nor its log in lines, and every refusal is still
 * on record. Requests with the right token are never counted here.
 */
export class RefusalThrottle {
  readonly #bucket: TokenBucket;
  readonly #logger: Logger;
  #suppressed = 0;
  #summary: NodeJS.Timeout | undefined;

  constructor(logger: Logger, limit: TokenBucketOptions = DEFAULT_REFUSAL_LIMIT) {
    this.#bucket = new TokenBucket(limit);
    this.#logger = logger;
  }

  /** True when this refusal may be answered and logged in full; false means answer 429. */
  admit(): boolean {
    if (this.#bucket.take()) return true;
    this.#suppressed++;
    this.#summary ??= setTimeout(() => this.#flush(), SUMMARY_WINDOW_MS).unref();
    return false;
  }

  /** Logs what is still uncounted; idempotent. */
  close(): void {
    this.#flush();
  }

  #flush(): void {
    clearTimeout(this.#summary);
    this.#summary = undefined;
    if (this.#suppressed === 0) return;
    this.#logger.warn({ status: 429, count: this.#suppressed }, 'credentials endpoint rate-limited refused requests');
    this.#suppressed = 0;
  }
}
