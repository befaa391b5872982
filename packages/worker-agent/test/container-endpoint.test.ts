import { readFile } from 'node:fs/promises';
import anyTest, { type TestFn } from 'ava';
import type { AwsCredentials } from '@credfwd/shared';
import type { StoredCredentials } from '../src/credential-store.ts';
import { containerEnv } from '../src/container-env.ts';
import { CONTAINER_ENDPOINT_PATH, CREDENTIALS_PATH, createCredentialsEndpoint, type CredentialsEndpoint } from '../src/credentials-endpoint.ts';
import { capturedLogger } from './helpers/captured-logger.ts';

const test = anyTest as TestFn<{ endpoints: CredentialsEndpoint[] }>;

const VALUE: AwsCredentials = { accessKeyId: 'ASIACONTAINERKEY0001', secretAccessKey: 'container-secret-value', sessionToken: 'container-session-token' };
const HELD: StoredCredentials = { value: VALUE, seq: 1, receivedAt: new Date(), expiresAt: new Date(Date.now() + 3600_000) };
// Another loopback address stands in for 169.254.170.2, which only the netns test (root) can add to an interface.
const SECOND = { host: '127.0.0.2', port: 0 };

test.beforeEach((t) => {
  t.context.endpoints = [];
});

test.afterEach.always((t) => Promise.all(t.context.endpoints.map((endpoint) => endpoint.close())));

async function start(t: { context: { endpoints: CredentialsEndpoint[] } }, containerListen?: typeof SECOND): Promise<CredentialsEndpoint> {
  const endpoint = await createCredentialsEndpoint({ credentials: () => HELD, logger: capturedLogger().logger, ...(containerListen ? { containerListen } : {}) });
  t.context.endpoints.push(endpoint);
  return endpoint;
}

async function status(url: string, token: string | null): Promise<number> {
  const response = await fetch(url, { headers: token === null ? {} : { authorization: token } });
  await response.body?.cancel();
  return response.status;
}

test('with containerListen the endpoint serves the same token\'s credentials at the second address too, and refuses it without the token', async (t) => {
  const endpoint = await start(t, SECOND);
  t.regex(endpoint.containerUrl ?? '', new RegExp(`^http://127\\.0\\.0\\.2:\\d+${CREDENTIALS_PATH}$`));
  const token = await readFile(endpoint.tokenFile, 'utf8');
  const response = await fetch(endpoint.containerUrl!, { headers: { authorization: token } });
  t.is(response.status, 200);
  t.is(((await response.json()) as { AccessKeyId: string }).AccessKeyId, VALUE.accessKeyId);
  t.is(await status(endpoint.containerUrl!, null), 401);
  t.is(await status(endpoint.containerUrl!, 'wrong'), 401);
  t.is(await status(endpoint.url, token), 200, 'loopback is still served');
});

test('the container-endpoint path answers the container URL to the token only, and 404 when there is none', async (t) => {
  const withContainers = await start(t, SECOND);
  const token = await readFile(withContainers.tokenFile, 'utf8');
  const answer = await fetch(new URL(CONTAINER_ENDPOINT_PATH, withContainers.url), { headers: { authorization: token } });
  t.deepEqual(await answer.json(), { url: withContainers.containerUrl });
  t.is(await status(new URL(CONTAINER_ENDPOINT_PATH, withContainers.url).href, null), 401);
  const loopbackOnly = await start(t);
  t.is(loopbackOnly.containerUrl, undefined);
  t.is(await status(new URL(CONTAINER_ENDPOINT_PATH, loopbackOnly.url).href, await readFile(loopbackOnly.tokenFile, 'utf8')), 404);
});

test('containerEnv prints the container URL, the token file path (never the token), the region and no instance-role fallback', async (t) => {
  const endpoint = await start(t, SECOND);
  const env = { AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: endpoint.tokenFile, AWS_REGION: 'eu-west-1' };
  const token = await readFile(endpoint.tokenFile, 'utf8');
  const lines = await containerEnv({ format: 'env' }, env);
  t.is(lines, [
    `AWS_CONTAINER_CREDENTIALS_FULL_URI=${endpoint.containerUrl}`,
    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=${endpoint.tokenFile}`,
    'AWS_EC2_METADATA_DISABLED=true',
    'AWS_REGION=eu-west-1',
    'AWS_DEFAULT_REGION=eu-west-1',
    '',
  ].join('\n'));
  const docker = await containerEnv({ format: 'docker' }, env);
  t.true(docker.includes(`--env AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/credfwd/token\n`));
  t.true(docker.includes(`--volume ${endpoint.tokenFile}:/run/credfwd/token:ro\n`));
  t.false(lines.includes(token) || docker.includes(token), 'the token stays in its file');
});

test('containerEnv fails with a code and hint: no container address (NOT_FOUND), a token of another agent (AGENT_AUTH_FAILED), no agent (USAGE)', async (t) => {
  const loopbackOnly = await start(t);
  const other = await start(t, SECOND);
  await t.throwsAsync(containerEnv({ format: 'env' }, { AWS_CONTAINER_CREDENTIALS_FULL_URI: loopbackOnly.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: loopbackOnly.tokenFile }), { code: 'NOT_FOUND', message: /serves no address containers can reach/ });
  await t.throwsAsync(containerEnv({ format: 'env' }, { AWS_CONTAINER_CREDENTIALS_FULL_URI: other.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: loopbackOnly.tokenFile }), { code: 'AGENT_AUTH_FAILED', message: /HTTP 401/ });
  await t.throwsAsync(containerEnv({ format: 'env' }, {}), { code: 'USAGE' });
});
