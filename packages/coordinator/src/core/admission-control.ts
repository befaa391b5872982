import type { IncomingMessage } from 'node:http';
import { TokenBucket, type Logger } from '@credfwd/shared';
import { FailedHandshakeLimiter } from './failed-handshake-limiter.ts';
import { RefusalLog } from './refusal-log.ts';

/** How much unauthenticated traffic the agent port takes before it refuses more. */
export interface AdmissionLimits {
  /**
   * Connections not yet authenticated (TLS, upgrade and handshake included)
   * held at once; further connections are dropped on accept. Authenticated
   * agents do not count. Default 1,024.
   */
  maxPendingHandshakes: number;
  /** Sustained rate of new handshakes; upgrades over it get HTTP 503 and the agent backs off. Default 200 per second. */
  handshakesPerSecond: number;
  /** Handshakes admitted at once after a quiet spell. Default 400. */
  handshakeBurst: number;
  /**
   * Failed handshakes (refused with a close code, or broken frames) one
   * address may make per window; its further upgrades get HTTP 429 until the
   * window ends. Successful handshakes never count. Default 50.
   */
  maxFailedHandshakes: number;
  /** Window of {@link maxFailedHandshakes}. Default 60 s. */
  failedHandshakeWindowMs: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  maxPendingHandshakes: 1024,
  handshakesPerSecond: 200,
  handshakeBurst: 400,
  maxFailedHandshakes: 50,
  failedHandshakeWindowMs: 60_000,
};

// Addresses the failed-handshake limiter remembers at once: bounds its memory under a spread-out flood.
const MAX_TRACKED_ADDRESSES = 10_000;
// A flood is logged once per this interval per kind of refusal, with a count.
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Why an upgrade is refused: the HTTP answer and when the agent may retry. */
export interface UpgradeRefusal {
  status: number;
  message: string;
  retryAfterSeconds: number;
}

/**
 * Decides which unauthenticated traffic the agent port takes: a handshake
 * rate for everyone, and a block for an address that keeps failing its
 * handshakes. Floods are logged once per interval, with a count.
 */
export class AdmissionControl {
  readonly limits: AdmissionLimits;
  readonly #logger: Logger;
  readonly #failures: FailedHandshakeLimiter;
  readonly #rate: TokenBucket;
  readonly #refusals: RefusalLog;

  constructor(logger: Logger, limits: Partial<AdmissionLimits> = {}) {
    this.#logger = logger;
    this.limits = { ...DEFAULT_ADMISSION_LIMITS, ...limits };
    this.#failures = new FailedHandshakeLimiter({
      maxFailures: this.limits.maxFailedHandshakes,
      windowMs: this.limits.failedHandshakeWindowMs,
      maxAddresses: MAX_TRACKED_ADDRESSES,
    });
    this.#rate = new TokenBucket({ ratePerSecond: this.limits.handshakesPerSecond, burst: this.limits.handshakeBurst });
    this.#refusals = new RefusalLog(logger, REFUSAL_LOG_INTERVAL_MS);
  }

  /** Why an upgrade is refused, or undefined to admit it. */
  admit(request: IncomingMessage): UpgradeRefusal | undefined {
    const address = request.socket.remoteAddress ?? 'unknown';
    const blockedForMs = this.#failures.blockedForMs(address);
    if (blockedForMs > 0) return { status: 429, message: 'Too Many Failed Handshakes', retryAfterSeconds: Math.ceil(blockedForMs / 1000) };
    if (!this.#rate.take()) {
      this.#refusals.refused('handshake rate cap reached; refusing upgrades with 503', { remote: address, handshakesPerSecond: this.limits.handshakesPerSecond });
      return { status: 503, message: 'Handshake Rate Exceeded', retryAfterSeconds: 1 };
    }
    return undefined;
  }

  /** A connection dropped on accept because the pending-handshake cap was reached. */
  dropped(remote: string | undefined): void {
    this.#refusals.refused('connection cap reached; dropping new connections', { remote, maxPendingHandshakes: this.limits.maxPendingHandshakes });
  }

  /** Counts a failed handshake against its address, and says so once the address is blocked. */
  handshakeFailed(address: string): void {
    if (!this.#failures.recordFailure(address)) return;
    this.#logger.warn({
      remote: address,
      failures: this.limits.maxFailedHandshakes,
      windowMs: this.limits.failedHandshakeWindowMs,
    }, 'too many failed handshakes from this address; refusing its upgrades with 429 until the window ends');
  }
}
