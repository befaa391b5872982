import { monotonicMs } from '@credfwd/shared';

/**
 * Notices a silent peer: the coordinator pings every interval, and two
 * intervals without one mean the connection is gone even if TCP has not noticed.
 *
 * A timer that fires far later than asked means this process stalled (CPU
 * starvation, a long GC, a suspended laptop), not that the peer went quiet:
 * its pings may be sitting unread in the socket. Then the peer gets one more
 * interval, after the pending input has been read, before it is called silent.
 */
export class HeartbeatMonitor {
  readonly #intervalMs: number;
  readonly #onSilent: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(intervalMs: number, onSilent: () => void) {
    this.#intervalMs = intervalMs;
    this.#onSilent = onSilent;
  }

  /** Starts (or restarts) waiting for the next ping. */
  start(): void {
    if (this.#closed) return;
    this.#arm(2 * this.#intervalMs, true);
  }

  /** Records a ping. */
  beat(): void {
    this.start();
  }

  /** Stops watching; idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #arm(delayMs: number, forgiveStall: boolean): void {
    clearTimeout(this.#timer);
    const due = monotonicMs() + delayMs;
    this.#timer = setTimeout(() => {
      const stalled = monotonicMs() - due > this.#intervalMs;
      if (stalled && forgiveStall) {
        this.#arm(this.#intervalMs, false);
        return;
      }
      this.#closed = true;
      this.#onSilent();
    }, delayMs);
  }
}
