import test from 'ava';
import { SDK_REFRESH_WINDOW_SECONDS } from '@credfwd/shared';
import { advertisedExpiration } from '../src/advertised-expiration.ts';
import type { StoredCredentials } from '../src/credential-store.ts';

const RECEIVED_AT = Date.UTC(2030, 0, 1, 12, 0, 0);
const value = { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 'secret' };

function held(remainingSeconds: number, refreshInSeconds?: number): StoredCredentials {
  return { value, seq: 1, receivedAt: new Date(RECEIVED_AT), expiresAt: new Date(RECEIVED_AT + remainingSeconds * 1000), refreshInSeconds };
}

test('advertisedExpiration is the real expiry when the next push is not known', (t) => {
  t.is(advertisedExpiration(held(3600), RECEIVED_AT).getTime(), RECEIVED_AT + 3600_000);
});

test('advertisedExpiration is the planned next push plus the SDK refresh window, when that is sooner', (t) => {
  const at = advertisedExpiration(held(3600, 1800), RECEIVED_AT + 60_000);
  t.is(at.getTime(), RECEIVED_AT + (1800 + SDK_REFRESH_WINDOW_SECONDS) * 1000);
});

test('advertisedExpiration never goes past the real expiry', (t) => {
  t.is(advertisedExpiration(held(1000, 900), RECEIVED_AT).getTime(), RECEIVED_AT + 1000_000);
});

test('advertisedExpiration takes a late push as due now, never advertising a past Expiration', (t) => {
  const now = RECEIVED_AT + 2000_000;
  t.is(advertisedExpiration(held(3600, 1800), now).getTime(), now + SDK_REFRESH_WINDOW_SECONDS * 1000);
  t.is(advertisedExpiration(held(2100, 1800), now).getTime(), RECEIVED_AT + 2100_000, 'still capped by the real expiry');
});

test('advertisedExpiration takes a wider refresh window for a client that has one (botocore)', (t) => {
  t.is(advertisedExpiration(held(3600, 1800), RECEIVED_AT, 900).getTime(), RECEIVED_AT + (1800 + 900) * 1000);
  t.is(advertisedExpiration(held(2000, 1800), RECEIVED_AT, 900).getTime(), RECEIVED_AT + 2000_000, 'still capped by the real expiry');
});
