import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import anyTest, { type TestFn } from 'ava';
import { MIN_REMAINING_SECONDS, type AwsCredentials } from '@credfwd/shared';
import type { StoredCredentials } from '../src/credential-store.ts';
import { IMDS_ROLE_NAME, createImdsEndpoint, type ImdsEndpoint, type ImdsEndpointOptions } from '../src/imds-endpoint.ts';
import { findOwner, peerOwnerUid } from '../src/peer-owner.ts';
import { capturedLogger, type CapturedLogger } from './helpers/captured-logger.ts';

const test = anyTest as TestFn<{ endpoints: ImdsEndpoint[] }>;
const VALUE: AwsCredentials = { accessKeyId: 'ASIAIMDSKEY000000001', secretAccessKey: 'imds-secret-value', sessionToken: 'imds-session-token' };
const CREDS_PATH = `latest/meta-data/iam/security-credentials/${IMDS_ROLE_NAME}`;

test.beforeEach((t) => {
  t.context.endpoints = [];
});
test.afterEach.always((t) => Promise.all(t.context.endpoints.map((endpoint) => endpoint.close())));

function held(remainingSeconds = 3600): StoredCredentials {
  const now = Date.now();
  return { value: VALUE, seq: 1, receivedAt: new Date(now), expiresAt: new Date(now + remainingSeconds * 1000) };
}

async function endpoint(t: { context: { endpoints: ImdsEndpoint[] } }, options: Partial<ImdsEndpointOptions> = {}): Promise<ImdsEndpoint & { log: CapturedLogger }> {
  const log = capturedLogger();
  const started = await createImdsEndpoint({ credentials: () => held(), region: () => 'eu-west-1', logger: log.logger, ...options });
  t.context.endpoints.push(started);
  return Object.assign(started, { log });
}

/** One request with node:http, which (unlike fetch) sends any header given, X-Forwarded-For included. */
function ask(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject).end();
  });
}

async function token(ep: ImdsEndpoint, ttl = '60'): Promise<string> {
  const answer = await ask(ep.url, 'latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
  if (answer.status !== 200) throw new Error(`token request answered ${answer.status}`);
  return answer.body;
}

test('the IMDSv2 flow: a token, the role name, then the credentials in the instance metadata shape', async (t) => {
  const credentials = held();
  const ep = await endpoint(t, { credentials: () => credentials });
  t.regex(ep.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const issued = await ask(ep.url, 'latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
  t.is(issued.status, 200);
  t.is(issued.headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
  t.regex(issued.body, /^[A-Za-z0-9_-]{56}$/, 'random, without a newline that would make it an illegal header value');
  const headers = { 'x-aws-ec2-metadata-token': issued.body };
  t.is((await ask(ep.url, 'latest/meta-data/iam/security-credentials/', { headers })).body, IMDS_ROLE_NAME);
  const body = JSON.parse((await ask(ep.url, CREDS_PATH, { headers })).body) as Record<string, string>;
  t.deepEqual(Object.keys(body), ['Code', 'LastUpdated', 'Type', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration']);
  t.like(body, { Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: VALUE.accessKeyId, SecretAccessKey: VALUE.secretAccessKey, Token: VALUE.sessionToken });
  t.is(body.Expiration, new Date(Math.floor(credentials.expiresAt.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z'));
  t.is((await ask(ep.url, 'latest/meta-data/placement/region', { headers })).body, 'eu-west-1');
  t.deepEqual(JSON.parse((await ask(ep.url, 'latest/dynamic/instance-identity/document', { headers })).body), { region: 'eu-west-1' });
  t.is((await ask(ep.url, 'latest/meta-data/iam/security-credentials/other', { headers })).status, 404);
  t.false(ep.log.text().includes(VALUE.secretAccessKey) || ep.log.text().includes(issued.body), 'neither the secret nor the token is logged');
});

test('token TTLs outside 1–21600 s, or missing, are refused with 400; tokens expire with their TTL', async (t) => {
  let now = Date.now();
  const ep = await endpoint(t, { clock: { now: () => now } });
  for (const ttl of ['0', '21601', 'abc', '-5', '']) {
    t.is((await ask(ep.url, 'latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttl } })).status, 400, `ttl ${JSON.stringify(ttl)}`);
  }
  t.is((await ask(ep.url, 'latest/api/token', { method: 'PUT' })).status, 400);
  const short = await token(ep, '1');
  t.is((await ask(ep.url, CREDS_PATH, { headers: { 'x-aws-ec2-metadata-token': short } })).status, 200);
  now += 1_000;
  t.is((await ask(ep.url, CREDS_PATH, { headers: { 'x-aws-ec2-metadata-token': short } })).status, 401, 'expired with its TTL');
  t.is((await ask(ep.url, CREDS_PATH, { headers: { 'x-aws-ec2-metadata-token': 'made-up' } })).status, 401);
});

test('IMDSv1 (no token) is refused with 401 unless allowed; X-Forwarded-For is refused with 403', async (t) => {
  const strict = await endpoint(t);
  t.is((await ask(strict.url, CREDS_PATH)).status, 401);
  const v1 = await endpoint(t, { allowV1: true });
  t.is((await ask(v1.url, CREDS_PATH)).status, 200);
  t.is((await ask(v1.url, 'latest/api/token', { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' } })).status, 403);
  t.is((await ask(v1.url, CREDS_PATH, { headers: { 'x-forwarded-for': '10.0.0.1' } })).status, 403);
  t.is((await ask(v1.url, 'latest/api/token', { method: 'GET' })).status, 405);
  t.regex(strict.log.text(), /instance metadata endpoint refused a request/);
});

test('no usable credentials is 503; the 120 s floor and the refresh-driven Expiration are the container endpoint\'s', async (t) => {
  const empty = await endpoint(t, { credentials: () => undefined });
  t.is((await ask(empty.url, CREDS_PATH, { headers: { 'x-aws-ec2-metadata-token': await token(empty) } })).status, 503);
  const now = Date.now();
  const pushed: StoredCredentials = { ...held(3600), receivedAt: new Date(now), refreshInSeconds: 60 };
  const ep = await endpoint(t, { credentials: () => pushed, clock: { now: () => now } });
  const body = JSON.parse((await ask(ep.url, CREDS_PATH, { headers: { 'x-aws-ec2-metadata-token': await token(ep) } })).body) as { Expiration: string };
  t.true(new Date(body.Expiration).getTime() < now + 3600_000 - MIN_REMAINING_SECONDS * 1000, 'advertised before the real expiry, after the next push');
  t.regex(body.Expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'the exact format of real IMDS');
  const headers = { 'x-aws-ec2-metadata-token': await token(ep), 'user-agent': 'Boto3/1.43.11 Python/3.11.7 Linux/6.18 Botocore/1.43.11' };
  const botocore = JSON.parse((await ask(ep.url, CREDS_PATH, { headers })).body) as { Expiration: string };
  t.regex(botocore.Expiration, /\.000Z$/, 'botocore gets milliseconds, which its static stability does not parse');
  t.true(Date.parse(botocore.Expiration) > Date.parse(body.Expiration), 'and a wider window after the next push');
});

test('peerOwnerUid names the owner of a loopback client socket; findOwner reads the kernel table format', async (t) => {
  const ep = await endpoint(t);
  const port = Number(new URL(ep.url).port);
  // A connection held open while its owner is looked up: the client end is listed until it closes.
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  t.is(await peerOwnerUid(socket.localPort ?? 0, port), process.getuid?.());
  const table = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
    + '   0: 0100007F:A1B2 0100007F:0050 01 00000000:00000000 00:00000000 00000000   997        0 1 1 0 20 4 30 10 -1\n'
    + '   1: 0100007F:1F90 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000   996        0 1 1 0 20 4 30 10 -1\n'
    + '   2: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000   998        0 1 1 0 20 4 30 10 -1';
  t.is(findOwner(table, 0xa1b2, 0x1f90), 998, 'the line whose local port is the client\'s and remote port ours, even the last one without a newline');
  t.is(findOwner(table, 0x1f90, 0xa1b2), 996);
  t.is(findOwner(table, 0xa1b2, 0x0051), undefined);
});
