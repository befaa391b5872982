import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import type { AwsCredentials } from '@credfwd/shared';
import type { StoredCredentials } from '../../packages/worker-agent/src/credential-store.ts';
import { fetchProcessCredentials } from '../../packages/worker-agent/src/credential-process.ts';
import { createCredentialsEndpoint, type CredentialsEndpoint } from '../../packages/worker-agent/src/credentials-endpoint.ts';
import { within } from '../helpers/deadline.ts';
import { capturedLogger } from '../helpers/captured-logger.ts';

const test = anyTest as TestFn<{ endpoints: CredentialsEndpoint[] }>;
// The built one-file agent, as workloads' profiles run it (`pnpm build` first).
const AGENT_BIN = fileURLToPath(new URL('../../packages/worker-agent/bin/credfwd-agent.js', import.meta.url));
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

/** A token file that outlives its endpoint: the endpoint removes its own when it closes. */
async function liveTokenFile(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-token-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  await writeFile(file, 'not-a-live-token', { mode: 0o600 });
  return file;
}

/** Runs the built `credfwd-agent credentials` against `ep`, with no AWS variables of the test's own. */
function credentialsCommand(ep: { url: string; tokenFile: string }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runChild([process.execPath, AGENT_BIN, 'credentials', '--url', ep.url, '--token-file', ep.tokenFile], { PATH: process.env.PATH });
}

// Never spawnSync: the endpoints under test answer from this process's event loop.
function runChild([file = '', ...args]: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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

test('without usable credentials it exits 1 with NO_CREDENTIALS and a hint on stderr, nothing on stdout', async (t) => {
  const ep = await endpoint(t, () => undefined);
  const { status, stdout, stderr } = await credentialsCommand(ep);
  t.is(status, 1);
  t.is(stdout, '');
  t.regex(stderr, /^error\[NO_CREDENTIALS\]: the agent on this worker is running but holds no credentials with at least 120 s left\nhint: .+/m);
});

test('an agent that does not answer is AGENT_UNREACHABLE, not NO_CREDENTIALS', async (t) => {
  const ep = await endpoint(t, held);
  await ep.close();
  const { status, stdout, stderr } = await credentialsCommand({ url: ep.url, tokenFile: await liveTokenFile(t) });
  t.is(status, 1);
  t.is(stdout, '');
  t.regex(stderr, /^error\[AGENT_UNREACHABLE\]: the agent on this worker did not answer\nhint: .+/m);
});

test('the AWS CLI reports each failure of the credential process with its code: NO_CREDENTIALS, then AGENT_UNREACHABLE', async (t) => {
  const empty = await endpoint(t, () => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-process-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const awsCli = async (ep: { url: string; tokenFile: string }): Promise<string> => {
    const config = join(dir, 'config');
    const command = [process.execPath, AGENT_BIN, 'credentials', '--url', ep.url, '--token-file', ep.tokenFile].join(' ');
    await writeFile(config, `[default]\ncredential_process = ${command}\nregion = us-east-1\n`, { mode: 0o600 });
    const env = { PATH: process.env.PATH, HOME: dir, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' };
    const result = await within(runChild(['aws', 'sts', 'get-caller-identity'], env), 30_000, 'the AWS CLI ran the credential process and exited');
    t.not(result.status, 0, 'the AWS CLI fails without credentials');
    return result.stderr;
  };
  t.regex(await awsCli(empty), /custom-process: error\[NO_CREDENTIALS\]: .+\nhint: /);
  const gone = { url: empty.url, tokenFile: await liveTokenFile(t) };
  await empty.close();
  t.regex(await awsCli(gone), /custom-process: error\[AGENT_UNREACHABLE\]: .+\nhint: /);
});

test('credentials that have expired by the caller\'s clock are never returned', async (t) => {
  const ep = await endpoint(t, held);
  await t.throwsAsync(fetchProcessCredentials(ep, {}, () => Date.now() + 7200_000), { code: 'NO_CREDENTIALS', message: /expired by this clock/ });
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
