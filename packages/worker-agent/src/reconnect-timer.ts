/** Backoff settings of {@link ReconnectTimer}; the defaults are the agent's. */
export interface ReconnectTimerOptions {
  /** First delay; 250 ms by default. */
  initialMs?: number;
  /** Longest delay; 2 min by default, so a fleet waiting out a long outage costs the coordinator little. */
  maxMs?: number;
  /** Fraction of each delay added or taken away at random, so agents do not reconnect in step. */
  jitter?: number;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * Schedules reconnects with exponential backoff and jitter: 250 ms doubling to
 * 2 min, ±20 %. {@link reset} after a successful handshake starts over.
 */
export class ReconnectTimer {
  readonly #reconnect: () => void;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(reconnect: () => void, options: ReconnectTimerOptions = {}) {
    this.#reconnect = reconnect;
    this.#initialMs = options.initialMs ?? 250;
    this.#maxMs = options.maxMs ?? 120_000;
    this.#jitter = options.jitter ?? 0.2;
    this.#random = options.random ?? Math.random;
  }

  /** Schedules the next reconnect and returns its delay in milliseconds. */
  start(): number {
    if (this.#closed) return 0;
    const base = Math.min(this.#initialMs * 2 ** Math.min(this.#attempt, 30), this.#maxMs);
    const delay = Math.round(base * (1 + this.#jitter * (2 * this.#random() - 1)));
    this.#attempt += 1;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#reconnect();
    }, delay);
    return delay;
  }

  /** Starts the backoff over from the shortest delay. */
  reset(): void {
    this.#attempt = 0;
  }

  /** Cancels any pending reconnect for good; idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
