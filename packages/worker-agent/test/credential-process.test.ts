import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import type { AwsCredentials } from '@credfwd/shared';
import type { StoredCredentials } from '../src/credential-store.ts';
import { fetchProcessCredentials } from '../src/credential-process.ts';
import { createCredentialsEndpoint, type CredentialsEndpoint } from '../src/credentials-endpoint.ts';
import { capturedLogger } from './helpers/captured-logger.ts';

const test = anyTest as TestFn<{ endpoints: CredentialsEndpoint[] }>;
// The built one-file agent, as workloads' profiles run it (`pnpm build` first).
const AGENT_BIN = fileURLToPath(new URL('../bin/credfwd-agent.js', import.meta.url));
const VALUE: AwsCredentials = { accessKeyId: 'ASIAPROCESSKEY000001', secretAccessKey: 'process-secret-value', sessionToken: 'process-session-token' };

test.beforeEach((t) => {
  t.context.endpoints = [];
});
test.afterEach.always((t) => Promise.all(t.context.endpoints.map((endpoint) => endpoint.close())));

async function endpoint(t: { context: { endpoints: CredentialsEndpoint[] } }, credentials: () => StoredCredentials | undefined): Promise<CredentialsEndpoint> {
  const started = await createCredentialsEndpoint({ credentials, logger: capturedLogger().logger });
  t.context.endpoints.push(started);
  return started;
}

function held(): StoredCredentials {
  const now = Date.now();
  return { value: VALUE, seq: 1, receivedAt: new Date(now), expiresAt: new Date(now + 3600_000) };
}

/** Runs the built `credfwd-agent credentials` against `ep`, with no AWS variables of the test's own. */
function credentialsCommand(ep: CredentialsEndpoint): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_BIN, 'credentials', '--url', ep.url, '--token-file', ep.tokenFile], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject).on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('credfwd-agent credentials prints version 1 credential_process JSON from the agent\'s endpoint', async (t) => {
  const ep = await endpoint(t, held);
  const { status, stdout, stderr } = await credentialsCommand(ep);
  t.is(status, 0, stderr);
  const printed = JSON.parse(stdout) as Record<string, unknown>;
  t.like(printed, { Version: 1, AccessKeyId: VALUE.accessKeyId, SecretAccessKey: VALUE.secretAccessKey, SessionToken: VALUE.sessionToken });
  t.true(Date.parse(String(printed.Expiration)) > Date.now());
});

test('without usable credentials it exits non-zero with a message on stderr and nothing on stdout', async (t) => {
  const ep = await endpoint(t, () => undefined);
  const { status, stdout, stderr } = await credentialsCommand(ep);
  t.is(status, 1);
  t.is(stdout, '');
  t.regex(stderr, /error\[AGENT_UNREACHABLE\]: the agent on this worker holds no unexpired credentials/);
});

test('credentials that have expired by the caller\'s clock are never returned', async (t) => {
  const ep = await endpoint(t, held);
  await t.throwsAsync(fetchProcessCredentials(ep, {}, () => Date.now() + 7200_000), { code: 'AGENT_UNREACHABLE', message: /expired by this clock/ });
});

test('a caller without the token is refused: a missing token file, a wrong token, no endpoint at all', async (t) => {
  const ep = await endpoint(t, held);
  // Another user's EACCES is shown end to end as a real user in tests/credential-process.test.ts.
  await t.throwsAsync(fetchProcessCredentials({ url: ep.url, tokenFile: '/nonexistent/token' }, {}), { code: 'AGENT_AUTH_FAILED', message: /ENOENT/ });
  const other = await endpoint(t, held);
  await t.throwsAsync(fetchProcessCredentials({ url: ep.url, tokenFile: other.tokenFile }, {}), { code: 'AGENT_AUTH_FAILED', message: /HTTP 401/ });
  await t.throwsAsync(fetchProcessCredentials({}, {}), { code: 'USAGE' });
  const url = ep.url;
  await ep.close();
  await t.throwsAsync(fetchProcessCredentials({ url, tokenFile: other.tokenFile }, {}), { code: 'AGENT_UNREACHABLE' });
});
