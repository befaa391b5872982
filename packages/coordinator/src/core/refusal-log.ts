import type { Logger } from '@credfwd/shared';

/**
 * Logs refusals that come in floods (connection cap, handshake rate) at most
 * once per interval per kind, with how many were refused since the last
 * line: a flood must not also flood the log.
 */
export class RefusalLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #kinds = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(logger: Logger, intervalMs: number, now: () => number = Date.now) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Notes one refusal of `kind` (a fixed string, never peer input), logging it unless one was logged lately. */
  refused(kind: string, fields: Record<string, unknown>): void {
    const now = this.#now();
    const seen = this.#kinds.get(kind);
    if (seen && now - seen.loggedAt < this.#intervalMs) {
      seen.suppressed += 1;
      return;
    }
    this.#logger.warn({ ...fields, refusedSinceLastLine: seen?.suppressed ?? 0 }, kind);
    this.#kinds.set(kind, { loggedAt: now, suppressed: 0 });
  }
}
