import test from 'ava';
import { SDK_REFRESH_WINDOW_SECONDS } from '@credfwd/shared';
import type { StoredCredentials } from '../src/credential-store.ts';
import { BOTOCORE_REFRESH_WINDOW_SECONDS, imdsExpiration } from '../src/imds-expiration.ts';

const RECEIVED_AT = Date.UTC(2030, 0, 1, 12, 0, 0);
const BOTO3 = 'Boto3/1.43.11 Python/3.11.7 Linux/6.18 Botocore/1.43.11';
const AWS_CLI = 'aws-cli/1.45.11 Python/3.11.7 Linux/6.18 botocore/1.43.11';

function held(remainingSeconds: number, refreshInSeconds?: number): StoredCredentials {
  const value = { accessKeyId: 'ASIATESTKEY000000001', secretAccessKey: 'secret' };
  return { value, seq: 1, receivedAt: new Date(RECEIVED_AT), expiresAt: new Date(RECEIVED_AT + remainingSeconds * 1000 + 500), refreshInSeconds };
}

test('imdsExpiration gives clients other than botocore the container endpoint\'s Expiration, in the exact format of real IMDS', (t) => {
  for (const agent of [undefined, 'aws-sdk-js/3.972 ua/2.1', 'curl/8.5.0']) {
    t.is(imdsExpiration(held(3600, 1800), RECEIVED_AT, agent), new Date(RECEIVED_AT + (1800 + SDK_REFRESH_WINDOW_SECONDS) * 1000).toISOString().replace('.000Z', 'Z'));
  }
  t.is(imdsExpiration(held(3600), RECEIVED_AT, undefined), '2030-01-01T13:00:00Z', 'the real expiry, rounded down, when no push is planned');
});

test('imdsExpiration gives botocore its advisory window after the next push, with milliseconds that keep its static stability off', (t) => {
  for (const agent of [BOTO3, AWS_CLI]) {
    t.is(imdsExpiration(held(3600, 1800), RECEIVED_AT, agent), new Date(RECEIVED_AT + (1800 + BOTOCORE_REFRESH_WINDOW_SECONDS) * 1000).toISOString());
  }
  t.is(imdsExpiration(held(3600, 2), RECEIVED_AT, BOTO3), '2030-01-01T12:15:02.000Z');
});

test('imdsExpiration never tells botocore a later Expiration than the real one, rounded down to the second', (t) => {
  t.is(imdsExpiration(held(1000, 600), RECEIVED_AT, BOTO3), '2030-01-01T12:16:40.000Z');
  t.is(imdsExpiration(held(1000, 600), RECEIVED_AT + 900_000, BOTO3), '2030-01-01T12:16:40.000Z', 'a late push too');
});
