/** Refresh no later than this long before expiry, when the credential lives long enough to allow it. */
export const REFRESH_LEAD_SECONDS = 300;
/** Backoff after a failed mint grows from 1 s to this cap (full jitter). */
export const MAX_BACKOFF_SECONDS = 60;

/**
 * Seconds until the next refresh of credentials with `remainingSeconds`
 * left: half their remaining life, but no later than 5 minutes before expiry,
 * with ±10 % jitter so clusters launched together do not refresh together.
 * An override (a rotation policy, or tests) can only make it sooner.
 */
export function nextRefreshDelay(remainingSeconds: number, random: () => number, overrideSeconds?: number): number {
  const halfLife = (remainingSeconds / 2) * (0.9 + 0.2 * random());
  const latest = remainingSeconds - REFRESH_LEAD_SECONDS;
  const planned = latest >= 1 ? Math.min(halfLife, latest) : Math.max(halfLife, 0.5);
  return overrideSeconds === undefined ? planned : Math.min(overrideSeconds, planned);
}

/**
 * Full-jitter exponential backoff (AWS architecture blog): a random delay
 * in [0, min(cap, 1 s × 2^attempt)], never quite zero.
 */
export function backoffDelay(attempt: number, random: () => number): number {
  return Math.max(0.05, random() * Math.min(MAX_BACKOFF_SECONDS, 2 ** attempt));
}

/** When credentials that expire at `expiresAt` are next refreshed: {@link nextRefreshDelay} from `now`. */
export function nextRefreshAt(expiresAt: Date, now: number, random: () => number, overrideSeconds?: number): Date {
  return new Date(now + nextRefreshDelay((expiresAt.getTime() - now) / 1000, random, overrideSeconds) * 1000);
}
