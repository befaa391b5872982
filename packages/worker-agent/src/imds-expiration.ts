import { utcIsoString } from '@credfwd/shared';
import { advertisedExpiration } from './advertised-expiration.ts';
import type { StoredCredentials } from './credential-store.ts';
import { isoSeconds } from './loopback-http.ts';

/** botocore re-fetches on every use once its credentials are this close to Expiration (RefreshableCredentials' advisory window). */
export const BOTOCORE_REFRESH_WINDOW_SECONDS = 900;

// boto3, the AWS CLI v1 and aiobotocore all name botocore in the User-Agent of their instance metadata requests.
const BOTOCORE_AGENT = /\bbotocore\//i;

/**
 * The Expiration the instance metadata endpoint serves a client. Most get the
 * container endpoint's, in exactly the format real IMDS writes: KvikIO and
 * others parse it with that fixed pattern. botocore needs another: its IMDS
 * "static stability" (botocore/utils.py, InstanceMetadataFetcher._evaluate_expiration)
 * takes an Expiration in that format that is less than 17 to 25 minutes away
 * for a failing metadata service and moves it to 17 to 25 minutes from now,
 * so whatever instant the agent served, a long-lived client would re-fetch
 * only 2 to 10 minutes later, up to 10 minutes after a push. That check
 * parses only the exact format, while botocore's credentials take any ISO
 * 8601: botocore is served the instant with milliseconds, which it keeps as
 * given (never later than the real expiry), placed its own advisory window
 * after the next push, so its first use after the push fetches the new key.
 */
export function imdsExpiration(held: StoredCredentials, nowMs: number, userAgent: string | undefined): string {
  if (!BOTOCORE_AGENT.test(userAgent ?? '')) return isoSeconds(advertisedExpiration(held, nowMs));
  const at = advertisedExpiration(held, nowMs, BOTOCORE_REFRESH_WINDOW_SECONDS).getTime();
  // Rounded down, as isoSeconds does, so the client errs towards refreshing early.
  return utcIsoString(new Date(Math.floor(at / 1000) * 1000));
}
