import { SDK_REFRESH_WINDOW_SECONDS } from '@credfwd/shared';
import type { StoredCredentials } from './credential-store.ts';

/**
 * The Expiration the credentials endpoints tell SDK clients. SDKs re-fetch
 * only once they are within their refresh window of Expiration, so serving
 * the real expiry would keep a running client on old credentials until near
 * their end. Advertising `min(real expiry, next push + refreshWindowSeconds)`
 * brings clients back for the refreshed credentials right after the
 * coordinator's next push. A push that is late (the coordinator unreachable)
 * is taken as due now rather than in the past: an Expiration already past
 * makes botocore fail with "refreshed credentials are still expired" instead
 * of using credentials that are still good.
 */
export function advertisedExpiration(held: StoredCredentials, nowMs: number, refreshWindowSeconds = SDK_REFRESH_WINDOW_SECONDS): Date {
  if (held.refreshInSeconds === undefined) return held.expiresAt;
  const nextPushMs = Math.max(held.receivedAt.getTime() + held.refreshInSeconds * 1000, nowMs);
  return new Date(Math.min(held.expiresAt.getTime(), nextPushMs + refreshWindowSeconds * 1000));
}
