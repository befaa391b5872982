/** Settings of {@link FailedHandshakeLimiter}. */
export interface FailedHandshakeLimiterOptions {
  /** Failed handshakes one address may make per window before it is refused until the window ends. */
  maxFailures: number;
  windowMs: number;
  /**
   * Addresses remembered at once. Past this the oldest window is forgotten,
   * so a flood from many addresses costs bounded memory.
   */
  maxAddresses: number;
  now?: () => number;
}

interface Window {
  startedAt: number;
  failures: number;
}

/**
 * Counts failed handshakes per remote address in fixed windows. Only failures
 * count: an address whose agents authenticate is never refused, however many
 * of them connect.
 */
export class FailedHandshakeLimiter {
  readonly #options: FailedHandshakeLimiterOptions;
  readonly #now: () => number;
  // Insertion order is window start order, which makes the first entry the one to evict.
  readonly #windows = new Map<string, Window>();

  constructor(options: FailedHandshakeLimiterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Milliseconds until `address` may try again, or 0 if it may now. */
  blockedForMs(address: string): number {
    const window = this.#current(address);
    if (!window || window.failures < this.#options.maxFailures) return 0;
    return window.startedAt + this.#options.windowMs - this.#now();
  }

  /** Records a failure; true when it is the one that blocks the address, so the caller logs once per window. */
  recordFailure(address: string): boolean {
    let window = this.#current(address);
    if (!window) {
      window = { startedAt: this.#now(), failures: 0 };
      this.#windows.delete(address);
      this.#windows.set(address, window);
      this.#evict();
    }
    window.failures += 1;
    return window.failures === this.#options.maxFailures;
  }

  #current(address: string): Window | undefined {
    const window = this.#windows.get(address);
    if (!window) return undefined;
    if (this.#now() - window.startedAt < this.#options.windowMs) return window;
    this.#windows.delete(address);
    return undefined;
  }

  #evict(): void {
    for (const address of this.#windows.keys()) {
      if (this.#windows.size <= this.#options.maxAddresses) return;
      this.#windows.delete(address);
    }
  }
}
