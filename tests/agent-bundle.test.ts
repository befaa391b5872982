import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import { launchCluster } from '@credfwd/coordinator';
import { writeAgentBundle } from '../packages/coordinator/src/backends/agent-bundle.ts';
import { clusterAgentReady, readyUnlessExited } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { assumeRoleViaCli, createIamUser, startMoto, type Moto, type TemporaryCredentials } from './helpers/moto.ts';
import { collectOutput, type ProcessResult } from './helpers/processes.ts';

/** The Node of this machine's distribution (20), standing in for an older worker image. */
const SYSTEM_NODE = '/usr/bin/node';
const SESSION_ARN = 'arn:aws:sts::123456789012:assumed-role/launcher-admin/launcher-session';

const test = anyTest as TestFn<{ moto: Moto; session: TemporaryCredentials }>;

test.before(async (t) => {
  const moto = await startMoto();
  const user = await createIamUser(moto, 'bundle-launcher');
  // A temporary launcher identity: forward mode hands this very session to the workers.
  const session = await assumeRoleViaCli(moto, user, 'arn:aws:iam::123456789012:role/launcher-admin', 'launcher-session', 3600);
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
  process.env.AWS_ACCESS_KEY_ID = session.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = session.secretAccessKey;
  process.env.AWS_SESSION_TOKEN = session.sessionToken;
  process.env.AWS_CREDENTIAL_EXPIRATION = session.expiration.toISOString();
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
  process.env.AWS_CONFIG_FILE = '/dev/null';
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  t.context = { moto, session };
});

test.after.always(async (t) => {
  await t.context.moto?.stop();
});

/** An empty directory of its own holding only the bundle, as a worker that was handed the one file would. */
async function bundleAlone(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return (await writeAgentBundle(join(dir, 'credfwd-agent.mjs'))).path;
}

/** The system Node running the bundle, with a worker's bare environment: no NODE_PATH, no node_modules to fall back on. */
function runBundle(t: ExecutionContext, file: string, args: string[], env: Record<string, string>): { child: ChildProcess; result: Promise<ProcessResult> } {
  const child = spawn(SYSTEM_NODE, [file, ...args], {
    cwd: dirname(file),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dirname(file), LANG: 'C.UTF-8', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const result = collectOutput(child);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await result.catch(() => undefined);
  });
  return { child, result };
}

/** Directories a bare `import 'x'` from `file` would search; none may hold packages for the run to prove anything. */
function nodeModulesAbove(file: string): string[] {
  const found: string[] = [];
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) found.push(join(dir, 'node_modules'));
    if (dir === parse(dir).root) return found;
  }
}

const onSystemNode = existsSync(SYSTEM_NODE) ? test : test.skip;
if (!existsSync(SYSTEM_NODE)) console.warn(`agent-bundle: ${SYSTEM_NODE} is missing, so the bundle is not run under an older system Node here`);

onSystemNode('the one-file agent, alone in a directory under the system Node 20, joins a forward-mode cluster and its workload acts as the launcher\'s session', async (t) => {
  const file = await bundleAlone(t);
  t.deepEqual(nodeModulesAbove(file), [], 'no node_modules the bundle could borrow from');
  const cluster = await launchCluster({ workers: 0, region: 'us-east-1', environ: { AWS_ENDPOINT_URL: t.context.moto.url }, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const ready = clusterAgentReady(cluster, 'bundled');
  const agent = runBundle(t, file, ['join'], { CREDFWD_JOIN: cluster.joinString, CREDFWD_AGENT_ID: 'bundled', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' });
  await within(readyUnlessExited(ready, agent.result), 20_000, 'the bundled agent held the cluster\'s credentials');
  const [result, ...others] = await cluster.run(['aws', 'sts', 'get-caller-identity', '--output', 'json']);
  t.is(others.length, 0);
  t.is(result?.worker, 'bundled');
  t.is(result?.exitCode, 0, result?.stderr);
  t.is((JSON.parse(result?.stdout ?? '{}') as { Arn?: string }).Arn, SESSION_ARN);
  await cluster.close();
  const ended = await within(agent.result, 20_000, 'the bundled agent exited after its cluster was revoked');
  t.is(ended.code, 0, ended.stderr);
  t.false(ended.stderr.includes(t.context.session.secretAccessKey), 'no secret in the agent\'s log');
  t.false(ended.stderr.includes(cluster.joinString), 'no join string in the agent\'s log');
});

onSystemNode('the one-file agent under the system Node 20 takes its join string on stdin and stops when stdin closes, as local backends start it', async (t) => {
  const file = await bundleAlone(t);
  const cluster = await launchCluster({ workers: 0, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const ready = clusterAgentReady(cluster, 'piped');
  const agent = runBundle(t, file, ['join', '--stdin'], { CREDFWD_AGENT_ID: 'piped' });
  agent.child.stdin?.write(`${cluster.joinString}\n`);
  await within(ready, 20_000, 'the agent that read its join string from stdin joined');
  const results = await cluster.run(['sh', '-c', 'echo "node $(node --version 2>/dev/null || echo none)"; echo ok']);
  t.deepEqual(results.map((r) => [r.worker, r.exitCode, r.stdout.trim().split('\n').at(-1)]), [['piped', 0, 'ok']]);
  agent.child.stdin?.end();
  const ended = await within(agent.result, 20_000, 'the agent exited once its stdin closed');
  t.is(ended.code, 0, ended.stderr);
});

test('writeAgentBundle writes a 0644 copy, replacing a file there, and reports its size and SHA-256', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'agent.mjs');
  await writeFile(out, 'old', { mode: 0o600 });
  await chmod(out, 0o600);
  const written = await writeAgentBundle(out);
  const bytes = await readFile(out);
  t.is(written.path, out);
  t.is(written.bytes, bytes.length);
  t.is(written.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.is((await stat(out)).mode & 0o777, 0o644);
  t.true(written.bytes > 100_000, `a whole agent, not a stub (${written.bytes} bytes)`);
});

test('writeAgentBundle refuses a directory and a path it cannot write, with OUTPUT_UNWRITABLE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'sub'));
  const intoDirectory = await t.throwsAsync(writeAgentBundle(join(dir, 'sub')), { code: 'OUTPUT_UNWRITABLE' });
  t.regex((intoDirectory as { hint?: string }).hint ?? '', /--out .*credfwd-agent\.mjs/);
  await t.throwsAsync(writeAgentBundle(join(dir, 'missing', 'agent.mjs')), { code: 'OUTPUT_UNWRITABLE' });
  t.deepEqual((await readdir(dir)).sort(), ['sub'], 'no temporary file left behind');
});
