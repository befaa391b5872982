import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';

/** The header a token request names its lifetime in, and the answer repeats. */
export const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
/** IMDSv2's bounds on a token's lifetime, in seconds. */
const MIN_TTL = 1;
const MAX_TTL = 21_600;
/** Tokens held at once; beyond this the oldest go first, so a client asking in a loop cannot grow the agent's memory. */
const MAX_TOKENS = 4_096;

/**
 * IMDSv2 session tokens: random, each valid for the lifetime its request
 * asked. Held by their SHA-256 only, so the map's lookups reveal nothing
 * usable by timing and a heap dump holds no working token.
 */
export class ImdsTokens {
  readonly #clock: Clock;
  readonly #expiries = new Map<string, number>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** A new token for a TTL header value, or undefined when the value is missing or out of 1–21600. */
  issue(ttlHeader: string | string[] | undefined): { token: string; ttlSeconds: number } | undefined {
    if (typeof ttlHeader !== 'string' || !/^\d{1,5}$/.test(ttlHeader.trim())) return undefined;
    const ttlSeconds = Number(ttlHeader.trim());
    if (ttlSeconds < MIN_TTL || ttlSeconds > MAX_TTL) return undefined;
    const now = this.#clock.now();
    if (this.#expiries.size >= MAX_TOKENS) this.#prune(now);
    const token = randomBytes(42).toString('base64url');
    this.#expiries.set(digest(token), now + ttlSeconds * 1000);
    return { token, ttlSeconds };
  }

  /** True for a token issued here and not yet past its TTL. */
  valid(token: string | string[]): boolean {
    if (typeof token !== 'string') return false;
    const key = digest(token);
    const expiry = this.#expiries.get(key);
    if (expiry === undefined) return false;
    if (this.#clock.now() < expiry) return true;
    this.#expiries.delete(key);
    return false;
  }

  #prune(now: number): void {
    for (const [key, expiry] of this.#expiries) if (expiry <= now) this.#expiries.delete(key);
    // Still full: drop the oldest (a Map iterates in insertion order); its client asks for a new one, as after an expiry.
    for (const key of this.#expiries.keys()) {
      if (this.#expiries.size < MAX_TOKENS) break;
      this.#expiries.delete(key);
    }
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}
