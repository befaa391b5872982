import { monotonicMs } from './monotonic-clock.ts';

export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Most tokens held at once: the burst allowed after a quiet spell. */
  burst: number;
  /** Monotonic milliseconds; injectable for tests. Wall-clock jumps must not refill or drain it. */
  now?: () => number;
}

/** A token bucket: `take()` succeeds at most `burst` times at once and `ratePerSecond` times a second over time. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) throw new RangeError('a token bucket needs a positive rate and a burst of at least 1');
    this.#rate = options.ratePerSecond;
    this.#burst = options.burst;
    this.#now = options.now ?? monotonicMs;
    this.#tokens = options.burst;
    this.#last = this.#now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
