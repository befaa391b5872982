/** Settings of {@link HandshakeRateLimiter}. */
export interface HandshakeRateLimiterOptions {
  /** Sustained handshakes per second. */
  perSecond: number;
  /** Handshakes allowed at once after a quiet spell. */
  burst: number;
  now?: () => number;
}

/**
 * A token bucket on new handshakes, so a fleet reconnecting at once (say,
 * after a coordinator restart) is admitted at a pace the coordinator can
 * serve while the agents it turns away back off and retry.
 */
export class HandshakeRateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(options: HandshakeRateLimiterOptions) {
    this.#perMs = options.perSecond / 1000;
    this.#burst = options.burst;
    this.#now = options.now ?? Date.now;
    this.#tokens = options.burst;
    this.#updatedAt = this.#now();
  }

  /** Takes a token if one is left; false means over the cap. */
  tryTake(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updatedAt) * this.#perMs);
    this.#updatedAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
