import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { MIN_REMAINING_SECONDS, SDK_REFRESH_WINDOW_SECONDS, sealJson, type AwsCredentials, type TokenBucketOptions } from '@credfwd/shared';
import type { Clock } from '../src/clock.ts';
import { CredentialStore, type StoredCredentials } from '../src/credential-store.ts';
import { CREDENTIALS_PATH, createCredentialsEndpoint, type CredentialsEndpoint } from '../src/credentials-endpoint.ts';
import { capturedLogger, type CapturedLogger } from './helpers/captured-logger.ts';
import { skewedClock } from './helpers/skewed-clock.ts';

const test = anyTest as TestFn<{ endpoints: CredentialsEndpoint[] }>;

const VALUE: AwsCredentials = { accessKeyId: 'ASIAENDPOINTKEY00001', secretAccessKey: 'endpoint-secret-value', sessionToken: 'endpoint-session-token' };

test.beforeEach((t) => {
  t.context.endpoints = [];
});

test.afterEach.always((t) => Promise.all(t.context.endpoints.map((endpoint) => endpoint.close())));

function held(value: AwsCredentials = VALUE, remainingSeconds = 3600): StoredCredentials {
  const now = Date.now();
  return { value, seq: 1, receivedAt: new Date(now), expiresAt: new Date(now + remainingSeconds * 1000) };
}

async function endpoint(
  t: { context: { endpoints: CredentialsEndpoint[] } },
  credentials: () => StoredCredentials | undefined,
  clock?: Clock,
  refusalLimit?: TokenBucketOptions,
): Promise<CredentialsEndpoint & { log: CapturedLogger }> {
  const log = capturedLogger();
  const started = await createCredentialsEndpoint({ credentials, logger: log.logger, clock, ...(refusalLimit ? { refusalLimit } : {}) });
  t.context.endpoints.push(started);
  return Object.assign(started, { log });
}

/** A GET (or `method`) with the token file's token unless `authorization` says otherwise (null: no header). */
async function request(
  ep: CredentialsEndpoint,
  options: { authorization?: string | null; method?: string; url?: string } = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const token = options.authorization === undefined ? await readFile(ep.tokenFile, 'utf8') : options.authorization;
  const response = await fetch(options.url ?? ep.url, { method: options.method ?? 'GET', headers: token === null ? {} : { authorization: token } });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

test('createCredentialsEndpoint serves the credentials in the container-credentials shape to the right token', async (t) => {
  const credentials = held();
  const ep = await endpoint(t, () => credentials);
  t.regex(ep.url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+${CREDENTIALS_PATH}$`));
  const { status, headers, body } = await request(ep);
  t.is(status, 200);
  t.is(headers.get('content-type'), 'application/json');
  t.is(headers.get('cache-control'), 'no-store');
  t.deepEqual(JSON.parse(body), {
    AccessKeyId: VALUE.accessKeyId,
    SecretAccessKey: VALUE.secretAccessKey,
    Token: VALUE.sessionToken,
    Expiration: isoSeconds(credentials.expiresAt.getTime()),
  });
  t.regex(JSON.parse(body).Expiration as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('createCredentialsEndpoint leaves Token out for credentials without a session token', async (t) => {
  const ep = await endpoint(t, () => held({ accessKeyId: VALUE.accessKeyId, secretAccessKey: VALUE.secretAccessKey }));
  const body = JSON.parse((await request(ep)).body) as Record<string, string>;
  t.deepEqual(Object.keys(body), ['AccessKeyId', 'SecretAccessKey', 'Expiration']);
});

test('createCredentialsEndpoint keeps a 32-byte hex token in a 0600 file in a fresh 0700 directory, and logs where, never what', async (t) => {
  const ep = await endpoint(t, () => undefined);
  const token = await readFile(ep.tokenFile, 'utf8');
  t.regex(token, /^[0-9a-f]{64}$/);
  t.is((await stat(ep.tokenFile)).mode & 0o777, 0o600);
  t.is((await stat(dirname(ep.tokenFile))).mode & 0o777, 0o700);
  const line = ep.log.text().split('\n').find((l) => l.includes('credentials endpoint listening'));
  t.like(JSON.parse(line ?? '{}'), { level: 30, url: ep.url, tokenFile: ep.tokenFile });
  t.false(ep.log.text().includes(token));
});

test('createCredentialsEndpoint re-reads the token file on every request', async (t) => {
  const ep = await endpoint(t, () => held());
  const oldToken = await readFile(ep.tokenFile, 'utf8');
  t.is((await request(ep, { authorization: oldToken })).status, 200);
  const newToken = randomBytes(32).toString('hex');
  await writeFile(ep.tokenFile, newToken);
  t.is((await request(ep, { authorization: oldToken })).status, 401);
  t.is((await request(ep, { authorization: newToken })).status, 200);
});

test('createCredentialsEndpoint answers 401, 404 and 405, and logs each refusal without the token or the header', async (t) => {
  const ep = await endpoint(t, () => held());
  const token = await readFile(ep.tokenFile, 'utf8');
  const wrong = randomBytes(32).toString('hex');
  t.is((await request(ep, { authorization: null })).status, 401, 'no Authorization header');
  t.is((await request(ep, { authorization: wrong })).status, 401, 'a wrong token of the right length');
  t.is((await request(ep, { authorization: `${token}x` })).status, 401, 'the right token and then some');
  t.is((await request(ep, { authorization: '' })).status, 401, 'an empty header');
  const origin = new URL(ep.url).origin;
  t.is((await request(ep, { url: `${origin}/` })).status, 404);
  t.is((await request(ep, { url: `${ep.url}/more` })).status, 404);
  t.is((await request(ep, { url: `${origin}/latest/meta-data/iam/security-credentials/` })).status, 404);
  const post = await request(ep, { method: 'POST' });
  t.is(post.status, 405);
  t.is(post.headers.get('allow'), 'GET');
  t.is((await request(ep, { method: 'PUT', authorization: null })).status, 405);
  const refusals = ep.log.text().split('\n').filter((l) => l.includes('credentials endpoint refused a request')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(refusals.map((r) => r.status), [401, 401, 401, 401, 404, 404, 404, 405, 405]);
  t.like(refusals[0], { level: 40, method: 'GET', path: CREDENTIALS_PATH, remote: '127.0.0.1' });
  const text = ep.log.text();
  t.false(text.includes(token));
  t.false(text.includes(wrong));
  t.false(text.includes(VALUE.secretAccessKey));
});

test('createCredentialsEndpoint answers 503 before credentials and from MIN_REMAINING_SECONDS before expiry on the agent clock', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const clock = skewedClock();
  const store = new CredentialStore({ logger: capturedLogger().logger, clock });
  const ep = await endpoint(t, () => store.current(), clock);
  t.is((await request(ep)).status, 503);
  // The coordinator's own idea of expiry, ten hours out, must not count.
  const value = { ...VALUE, expiration: new Date(Date.now() + 10 * 3600_000).toISOString() };
  await store.receive({ type: 'credentials', seq: 1, remainingSeconds: 900, jwe: await sealJson(key, value) }, key);
  const fresh = await request(ep);
  t.is(fresh.status, 200);
  const expiration = Date.parse((JSON.parse(fresh.body) as { Expiration: string }).Expiration);
  t.true(Math.abs(expiration - (clock.now() + 900_000)) < 5_000, 'Expiration is reckoned from remainingSeconds on the agent clock');
  clock.advance((900 - MIN_REMAINING_SECONDS - 1) * 1000);
  t.is((await request(ep)).status, 200);
  clock.advance(1_000);
  const stale = await request(ep);
  t.is(stale.status, 503);
  t.false(stale.body.includes(VALUE.accessKeyId));
  store.wipe();
});

test('createCredentialsEndpoint advertises an Expiration no later than the next push plus the SDK refresh window', async (t) => {
  const clock = skewedClock();
  const receivedAt = clock.now();
  const credentials: StoredCredentials = {
    value: VALUE,
    seq: 3,
    receivedAt: new Date(receivedAt),
    expiresAt: new Date(receivedAt + 3600_000),
    refreshInSeconds: 1200,
  };
  const ep = await endpoint(t, () => credentials, clock);
  const { Expiration } = JSON.parse((await request(ep)).body) as { Expiration: string };
  t.is(Expiration, isoSeconds(receivedAt + (1200 + SDK_REFRESH_WINDOW_SECONDS) * 1000));
});

test('createCredentialsEndpoint listens on 127.0.0.1 only', async (t) => {
  const ep = await endpoint(t, () => held());
  const { port } = new URL(ep.url);
  const others = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address);
  if (others.length === 0) t.log('no non-loopback IPv4 address on this machine to try');
  for (const address of others) {
    const socket = connect(Number(port), address);
    const [err] = await once(socket, 'error').catch((e: unknown) => [e]) as [NodeJS.ErrnoException];
    t.is(err.code, 'ECONNREFUSED', `not reachable at ${address}`);
  }
  t.is((await request(ep)).status, 200);
});

test('CredentialsEndpoint.close stops the server and removes the token directory', async (t) => {
  const ep = await endpoint(t, () => held());
  t.is((await request(ep)).status, 200, 'a keep-alive connection is open');
  await ep.close();
  await ep.close();
  await t.throwsAsync(stat(dirname(ep.tokenFile)), { code: 'ENOENT' });
  const err = await t.throwsAsync(fetch(ep.url));
  t.is((err?.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
});

test('createCredentialsEndpoint answers a flood of refused requests with 429 beyond its limit, keeps serving the right token, and logs every refusal', async (t) => {
  const burst = 20;
  const ep = await endpoint(t, () => held(), undefined, { ratePerSecond: 1, burst });
  const started = performance.now();
  const flood = Array.from({ length: 300 }, (_, i) => request(ep, i % 3 === 0 ? { authorization: 'wrong-token' } : i % 3 === 1 ? { authorization: null } : { url: `${ep.url}x` }));
  const legitimate = Array.from({ length: 30 }, () => request(ep));
  const [floodAnswers, legitimateAnswers] = await Promise.all([Promise.all(flood), Promise.all(legitimate)]);
  const elapsedSeconds = (performance.now() - started) / 1000;

  t.deepEqual(new Set(legitimateAnswers.map((a) => a.status)), new Set([200]), 'the right token is never rate-limited');
  const limited = floodAnswers.filter((a) => a.status === 429);
  const refused = floodAnswers.filter((a) => a.status !== 429);
  t.true(refused.every((a) => a.status === 401 || a.status === 404));
  t.true(refused.length >= burst && refused.length <= burst + Math.ceil(elapsedSeconds) + 1, `${refused.length} answered in full`);
  t.is(limited.length + refused.length, 300);
  t.is(limited[0]?.headers.get('retry-after'), '1');

  await ep.close();
  const lines = ep.log.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.filter((l) => l.msg === 'credentials endpoint refused a request').length, refused.length);
  const summarized = lines.filter((l) => l.msg === 'credentials endpoint rate-limited refused requests').reduce((sum, l) => sum + Number(l.count), 0);
  t.is(summarized, limited.length, 'every 429 is counted in a summary line');
  const token = await readFile(ep.tokenFile, 'utf8').catch(() => undefined);
  t.is(token, undefined, 'the token file is gone after close');
  t.false(ep.log.text().includes('wrong-token'));
});
