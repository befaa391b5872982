import type { Clock } from './clock.ts';
import { ExpiryTimer } from './expiry-timer.ts';

/** An agent with no coordinator and nothing left to serve gives up after this long by default. */
export const DEFAULT_GIVE_UP_AFTER_MS = 10 * 60_000;

/** What a {@link CoordinatorLossWatch} looks at and whom it tells. */
export interface CoordinatorLossWatchOptions {
  clock: Clock;
  giveUpAfterMs: number;
  /** Until when (agent clock) the credentials held may be served; undefined when none may. */
  usableUntil(): number | undefined;
  onGiveUp(): void;
}

/**
 * Tells when an agent has lost its coordinator for good: no connection, and
 * no credentials it may still serve, for `giveUpAfterMs` on end. Until then
 * the agent keeps serving what it holds and keeps reconnecting; after it,
 * its workloads would run on without credentials and without anyone able to
 * stop them, so the agent stops them and exits instead of orphaning them.
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
    const { clock, giveUpAfterMs, usableUntil, onGiveUp } = this.#options;
    const from = Math.max(clock.now(), usableUntil() ?? 0);
    this.#timer = new ExpiryTimer({
      clock,
      deadlineMs: from + giveUpAfterMs,
      keepAlive: true,
      onExpired: () => {
        this.#timer = undefined;
        // The clock may have been set back since the count started: count again from the credentials' end.
        if ((usableUntil() ?? 0) > clock.now()) this.lost();
        else if (!this.#closed) onGiveUp();
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
