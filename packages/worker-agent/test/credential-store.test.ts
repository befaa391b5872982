import { randomBytes } from 'node:crypto';
import test from 'ava';
import { CredfwdError, MIN_REMAINING_SECONDS, sealJson, type AwsCredentials, type CredentialsPush } from '@credfwd/shared';
import { CredentialStore } from '../src/credential-store.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { skewedClock } from './helpers/skewed-clock.ts';

function credentials(n: number): AwsCredentials {
  return {
    accessKeyId: `ASIATESTKEY${String(n).padStart(9, '0')}`,
    secretAccessKey: `secret-${n}-${randomBytes(8).toString('hex')}`,
    sessionToken: `token-${n}-${randomBytes(8).toString('hex')}`,
    // A coordinator's idea of expiry that the agent must not use.
    expiration: new Date(Date.now() + 10 * 3600_000).toISOString(),
  };
}

async function push(key: Uint8Array, seq: number, value: unknown, remainingSeconds = 900, refreshInSeconds?: number): Promise<CredentialsPush> {
  return { type: 'credentials', seq, remainingSeconds, refreshInSeconds, jwe: await sealJson(key, value) };
}

test('CredentialStore reckons expiry from remainingSeconds on its own clock, not the coordinator\'s expiration', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const store = new CredentialStore({ logger: capturedLogger().logger, clock });
  const before = clock.now();
  const stored = await store.receive(await push(key, 1, credentials(1), 900), key);
  t.truthy(stored);
  const expiresAt = stored!.expiresAt.getTime();
  t.true(expiresAt >= before + 900_000 && expiresAt <= clock.now() + 900_000);
  t.is(store.current()?.seq, 1);
  clock.advance(899_000);
  t.is(store.current(), undefined, 'expired on the agent clock, whatever the expiration field says');
  t.is(store.summary(), undefined);
});

test('CredentialStore treats credentials with less than MIN_REMAINING_SECONDS left as expired', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const store = new CredentialStore({ logger: capturedLogger().logger, clock });
  await store.receive(await push(key, 1, credentials(1), 900), key);
  // 1 s of slack for the time the push took to open.
  clock.advance((900 - MIN_REMAINING_SECONDS - 1) * 1000);
  t.is(store.current()?.seq, 1, 'still usable just above the threshold');
  clock.advance(1_000);
  t.is(store.current(), undefined, 'unusable from MIN_REMAINING_SECONDS before expiry');
  t.truthy(await store.receive(await push(key, 2, credentials(2), MIN_REMAINING_SECONDS), key));
  t.is(store.current(), undefined, 'a push that arrives with no more life than that is never handed out');
  t.is(store.seq, 2);
});

test('CredentialStore records when each push arrived on its clock and when the next is planned', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const store = new CredentialStore({ logger: capturedLogger().logger, clock });
  const before = clock.now();
  const stored = await store.receive(await push(key, 1, credentials(1), 3600, 1800), key);
  t.true(stored!.receivedAt.getTime() >= before && stored!.receivedAt.getTime() <= clock.now());
  t.is(stored!.expiresAt.getTime() - stored!.receivedAt.getTime(), 3600_000);
  t.is(stored!.refreshInSeconds, 1800);
  t.is((await store.receive(await push(key, 2, credentials(2)), key))!.refreshInSeconds, undefined);
});

test('CredentialStore warns once when the held credentials cross the threshold with no newer push', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const log = capturedLogger();
  const store = new CredentialStore({ logger: log.logger, clock, expiryRecheckMs: 5 });
  // Usable for one more minute, then for two: the first push's warning would come a minute before the second's.
  await store.receive(await push(key, 1, credentials(1), MIN_REMAINING_SECONDS + 60), key);
  await store.receive(await push(key, 2, credentials(2), MIN_REMAINING_SECONDS + 120), key);
  // Past both: only the held (second) push may warn.
  clock.advance(150_000);
  const text = await log.waitFor(/credentials expired; no fresh credentials from the coordinator/);
  const warnings = text.split('\n').filter((line) => line.includes('credentials expired'));
  t.is(warnings.length, 1);
  t.like(JSON.parse(warnings[0]!), { level: 40, seq: 2 });
  t.is(store.current(), undefined);
});

test('CredentialStore warns when its clock jumps past the threshold', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const log = capturedLogger();
  const store = new CredentialStore({ logger: log.logger, clock, expiryRecheckMs: 5 });
  await store.receive(await push(key, 1, credentials(1), 3600), key);
  clock.advance(3600_000);
  await log.waitFor(/"seq":1,"msg":"credentials expired; no fresh credentials from the coordinator"/);
  t.is(store.current(), undefined);
});

test('CredentialStore.wipe stops the expiry warning', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const log = capturedLogger();
  const wiped = new CredentialStore({ logger: log.logger, clock, expiryRecheckMs: 5 });
  await wiped.receive(await push(key, 1, credentials(1), MIN_REMAINING_SECONDS + 60), key);
  wiped.wipe();
  // A witness on the same clock, due later: once it has warned, the wiped store would have warned before it.
  const witness = new CredentialStore({ logger: log.logger, clock, expiryRecheckMs: 5 });
  await witness.receive(await push(key, 2, credentials(2), MIN_REMAINING_SECONDS + 120), key);
  clock.advance(150_000);
  const text = await log.waitFor(/"seq":2,"msg":"credentials expired/);
  t.false(text.includes('"seq":1,"msg":"credentials expired'));
});

test('CredentialStore ignores pushes whose seq is not newer than the held one', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const store = new CredentialStore({ logger: capturedLogger().logger });
  t.truthy(await store.receive(await push(key, 5, credentials(5)), key));
  t.is(await store.receive(await push(key, 4, credentials(4)), key), undefined);
  t.is(await store.receive(await push(key, 5, credentials(55)), key), undefined);
  t.is(store.current()?.value.accessKeyId, credentials(5).accessKeyId);
  t.truthy(await store.receive(await push(key, 6, credentials(6)), key));
  t.is(store.current()?.seq, 6);
  t.is(store.seq, 6);
});

test('CredentialStore.wipe forgets the credentials but not the seq, so an old push cannot come back', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const store = new CredentialStore({ logger: capturedLogger().logger });
  await store.receive(await push(key, 3, credentials(3)), key);
  store.wipe();
  t.is(store.current(), undefined);
  t.is(await store.receive(await push(key, 2, credentials(2)), key), undefined);
  t.is(store.current(), undefined);
});

test('CredentialStore refuses a payload of the wrong shape without quoting it', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const store = new CredentialStore({ logger: capturedLogger().logger });
  const err = await t.throwsAsync(store.receive(await push(key, 1, { accessKeyId: 'short', secretAccessKey: 'do-not-echo-me' }), key), {
    instanceOf: CredfwdError,
    code: 'PROTOCOL_VIOLATION',
  });
  t.notRegex(err?.message ?? '', /do-not-echo-me|short/);
  t.is(store.current(), undefined);
});

test('CredentialStore refuses a payload sealed under another key', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const store = new CredentialStore({ logger: capturedLogger().logger });
  await t.throwsAsync(store.receive(await push(new Uint8Array(randomBytes(32)), 1, credentials(1)), key), { code: 'PROTOCOL_VIOLATION' });
});

test('CredentialStore logs the masked key id and expiry, never the secret or the token', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const log = capturedLogger();
  const store = new CredentialStore({ logger: log.logger });
  const value = credentials(7);
  await store.receive(await push(key, 7, value), key);
  const text = log.text();
  t.regex(text, /credentials received/);
  t.true(text.includes('ASIA…0007'));
  t.false(text.includes(value.accessKeyId));
  t.false(text.includes(value.secretAccessKey));
  t.false(text.includes(value.sessionToken!));
  t.deepEqual(store.summary(), { seq: 7, expiresAt: store.current()!.expiresAt, accessKeyIdMasked: 'ASIA…0007' });
});
