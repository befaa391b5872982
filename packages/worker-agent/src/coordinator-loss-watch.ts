import type { Clock } from './clock.ts';
import { ExpiryTimer } from './expiry-timer.ts';

/** An agent with no coordinator gives up after this long by default. */
export const DEFAULT_GIVE_UP_AFTER_MS = 10 * 60_000;

/** What a {@link CoordinatorLossWatch} counts on and whom it tells. */
export interface CoordinatorLossWatchOptions {
  clock: Clock;
  giveUpAfterMs: number;
  onGiveUp(): void;
}

/**
 * Tells when an agent has lost its coordinator for good: no connection for
 * `giveUpAfterMs` on end, counted from the loss whatever credentials the
 * agent still holds. Until then the agent keeps serving and reconnecting;
 * after it, nobody could revoke or stop its workloads any more (credentials
 * may be valid for a day and a half), so the agent stops them and exits
 * instead of leaving them running with live credentials.
 */
export class CoordinatorLossWatch {
  readonly #options: CoordinatorLossWatchOptions;
  #timer: ExpiryTimer | undefined;
  #closed = false;

  constructor(options: CoordinatorLossWatchOptions) {
    this.#options = options;
  }

  /** No coordinator now; starts the count unless it runs already. */
  lost(): void {
    if (this.#timer || this.#closed) return;
    const { clock, giveUpAfterMs, onGiveUp } = this.#options;
    this.#timer = new ExpiryTimer({
      clock,
      deadlineMs: clock.now() + giveUpAfterMs,
      keepAlive: true,
      onExpired: () => {
        this.#timer = undefined;
        if (!this.#closed) onGiveUp();
      },
    });
    this.#timer.start();
  }

  /** A coordinator answered; the count stops. */
  found(): void {
    this.#timer?.close();
    this.#timer = undefined;
  }

  /** Stops for good; idempotent. */
  close(): void {
    this.#closed = true;
    this.found();
  }
}
