/**
 * Notices a silent peer: the coordinator pings every interval, and two
 * intervals without one mean the connection is gone even if TCP has not noticed.
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
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#closed = true;
      this.#onSilent();
    }, 2 * this.#intervalMs);
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
}
