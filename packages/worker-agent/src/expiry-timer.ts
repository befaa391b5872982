import type { Clock } from './clock.ts';

/** What an {@link ExpiryTimer} watches and whom it tells. */
export interface ExpiryTimerOptions {
  clock: Clock;
  /** When to fire, in the clock's milliseconds since the epoch. */
  deadlineMs: number;
  onExpired: () => void;
  /** Longest real wait between two looks at the clock (default 60 s). */
  recheckMs?: number;
  /** Keep the process alive while waiting, when the deadline leads to an action rather than a warning. */
  keepAlive?: boolean;
}

const DEFAULT_RECHECK_MS = 60_000;

/**
 * Calls back once, when the clock reaches a deadline. setTimeout counts
 * monotonic time, but expiry is reckoned on the agent's clock, which can jump
 * (suspend and resume, an NTP step, a test's injected clock): so the timer
 * looks at the clock again at least every `recheckMs` instead of trusting
 * one long delay.
 */
export class ExpiryTimer {
  readonly #clock: Clock;
  readonly #deadlineMs: number;
  readonly #onExpired: () => void;
  readonly #recheckMs: number;
  readonly #keepAlive: boolean;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ExpiryTimerOptions) {
    this.#clock = options.clock;
    this.#deadlineMs = options.deadlineMs;
    this.#onExpired = options.onExpired;
    this.#recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    this.#keepAlive = options.keepAlive ?? false;
  }

  /** Starts watching; calls back at once if the deadline has already passed. */
  start(): void {
    if (this.#closed) return;
    const leftMs = this.#deadlineMs - this.#clock.now();
    if (leftMs <= 0) {
      this.#closed = true;
      this.#onExpired();
      return;
    }
    this.#timer = setTimeout(() => this.start(), Math.min(leftMs, this.#recheckMs));
    // A pending warning alone must not keep the process alive.
    if (!this.#keepAlive) this.#timer.unref();
  }

  /** Stops watching for good; idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
