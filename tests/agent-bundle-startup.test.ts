import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultAgentProgram, launchCluster } from '@credfwd/coordinator';
import { clusterAgentReady, readyUnlessExited } from './helpers/agents.ts';
import { capturedLogger } from './helpers/captured-logger.ts';
import { within } from './helpers/deadline.ts';
import { collectOutput, type ProcessResult } from './helpers/processes.ts';

const BUNDLE = createRequire(import.meta.url).resolve('@credfwd/worker-agent/bundle');

/** Node's own modules that an ES import of `node:crypto` or `node:net` would load through their lazy getters, unused by the agent. */
const UNUSED = ['NativeModule internal/crypto/webcrypto', 'NativeModule internal/blocklist'];

// Printed at exit by a preloaded module: which of Node's modules the agent loaded.
const REPORT_LOADED = `data:text/javascript,process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(process.moduleLoadList)))`;

/** The modules REPORT_LOADED printed on `stderr`; none if it printed nothing. */
function reportedLoaded(stderr: string): string[] {
  return JSON.parse(/LOADED (.*)$/m.exec(stderr)?.[1] ?? '[]') as string[];
}

/** Runs `node ARGS` with REPORT_LOADED preloaded; `loaded` is what it reported. */
async function runReportingLoaded(node: string, args: string[], label: string): Promise<ProcessResult & { loaded: string[] }> {
  const result = await within(collectOutput(spawn(node, ['--import', REPORT_LOADED, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })), 15_000, label);
  return { ...result, loaded: reportedLoaded(result.stderr) };
}

for (const node of [process.execPath, '/usr/bin/node']) {
  test(`the one-file agent requires Node's modules instead of importing them, so their unused parts stay unloaded (${node})`, async (t) => {
    const { code, stderr, loaded } = await runReportingLoaded(node, [BUNDLE, '--help'], 'credfwd-agent --help');
    t.is(code, 0, stderr);
    t.true(loaded.includes('NativeModule tls'), 'the report lists what the bundle loaded');
    t.deepEqual(UNUSED.filter((name) => loaded.includes(name)), []);
  });
}

test('the one-file agent never loads ws\'s optional native addons from the directories around it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-stray-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // What a worker's disk might hold above the copied file: modules that say so when loaded.
  for (const name of ['bufferutil', 'utf-8-validate']) {
    await mkdir(join(dir, 'node_modules', name), { recursive: true });
    await writeFile(join(dir, 'node_modules', name, 'index.js'), `process.stderr.write('STRAY ${name}\\n'); module.exports = {};`);
  }
  await copyFile(BUNDLE, join(dir, 'credfwd-agent.mjs'));
  const child = spawn(process.execPath, [join(dir, 'credfwd-agent.mjs'), '--help'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const result = await within(collectOutput(child), 15_000, 'credfwd-agent --help');
  t.is(result.code, 0, result.stderr);
  t.false(result.stderr.includes('STRAY'), result.stderr);
});

/** What Node prints when it loads NODE_EXTRA_CA_CERTS and cannot read the file: a sign that it loaded certificate authorities. */
const EXTRA_CERTS_WARNING = 'Ignoring extra certs from';

/** `node ARGS` with NODE_EXTRA_CA_CERTS naming a file that does not exist. */
function runWithMissingExtraCerts(args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem' }, stdio: ['ignore', 'pipe', 'pipe'] });
  return within(collectOutput(child), 20_000, `node ${args.join(' ')}`);
}

test('an agent started as backends start it never loads certificate authorities: it trusts only the pinned certificate', async (t) => {
  t.true((await runWithMissingExtraCerts(['-e', "require('node:tls').createSecureContext()"])).stderr.includes(EXTRA_CERTS_WARNING), 'this Node warns when it loads the missing extra certificates');
  // Some Node versions (20) load NODE_EXTRA_CA_CERTS at start whatever the program does; the agent may add nothing to that.
  const atStart = (await runWithMissingExtraCerts(['-e', '0'])).stderr.includes(EXTRA_CERTS_WARNING);
  const cluster = await launchCluster({ workers: 0, credentials: null, logger: capturedLogger().logger });
  t.teardown(() => cluster.close());
  const ready = clusterAgentReady(cluster, 'pinned');
  const program = defaultAgentProgram();
  const agent = runWithMissingExtraCerts([...program.nodeArgs, program.file, 'join'], { CREDFWD_JOIN: cluster.joinString, CREDFWD_AGENT_ID: 'pinned' });
  await within(readyUnlessExited(ready, agent), 20_000, 'the agent joined over its pinned TLS connection');
  await cluster.close();
  const { code, stderr } = await agent;
  t.is(code, 0, stderr);
  t.is(stderr.includes(EXTRA_CERTS_WARNING), atStart, stderr);
});

/**
 * Node's modules an agent holding credentials has no use for until a task
 * runs or never: they stay unloaded, and those of tasks load on first use.
 * `worker_threads`, the assert diff and directory streams are what esbuild's
 * interop would load through Node 22's lazy exports; perf_hooks is what
 * `performance` loads.
 */
const UNUSED_WHEN_IDLE = ['child_process', 'worker_threads', 'zlib', 'assert', 'perf_hooks', 'internal/fs/dir', 'internal/util/diff', 'internal/readline/interface'].map((name) => `NativeModule ${name}`);

/** Starts the one-file agent as backends do under `node`, joined to a forward-mode cluster; resolves with what it loaded once revoked. */
async function loadedByAgent(t: ExecutionContext, node: string, task: string[] | undefined): Promise<string[]> {
  const expiration = new Date(Date.now() + 3_600_000);
  const cluster = await launchCluster({
    workers: 0,
    credentials: 'forward',
    launcher: async () => ({ accessKeyId: 'ASIALAZYMODULES00001', secretAccessKey: 'lazy-secret', sessionToken: 'lazy-token', expiration }),
    logger: capturedLogger().logger,
  });
  t.teardown(() => cluster.close());
  const ready = clusterAgentReady(cluster, 'lazy');
  const program = defaultAgentProgram();
  const child = spawn(node, [...program.nodeArgs, '--import', REPORT_LOADED, program.file, 'join'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CREDFWD_JOIN: cluster.joinString, CREDFWD_AGENT_ID: 'lazy' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = collectOutput(child);
  await within(readyUnlessExited(ready, exited), 20_000, 'the agent holding its credentials');
  if (task) {
    const [result] = await cluster.run(task);
    t.is(result?.exitCode, 0, result?.stderr);
  }
  await cluster.close();
  const { code, stderr } = await within(exited, 20_000, 'the revoked agent exiting');
  t.is(code, 0, stderr);
  return reportedLoaded(stderr);
}

/** What `node` loads for an empty ES module file: Node 20's loader, for one, loads `fs/promises` and with it readline. */
async function loadedByEmptyModule(t: ExecutionContext, node: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'credfwd-empty-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'empty.mjs'), 'export {};\n');
  return (await runReportingLoaded(node, [join(dir, 'empty.mjs')], 'an empty ES module')).loaded;
}

for (const node of [process.execPath, '/usr/bin/node']) {
  test(`an agent holding credentials loads none of Node's modules that only tasks or nothing use, and loads them for its first task (${node})`, async (t) => {
    const floor = await loadedByEmptyModule(t, node);
    const idle = await loadedByAgent(t, node, undefined);
    t.true(idle.includes('NativeModule tls'), 'the report lists what the agent loaded');
    t.deepEqual(UNUSED_WHEN_IDLE.filter((name) => idle.includes(name) && !floor.includes(name)), []);
    const busy = await loadedByAgent(t, node, ['sh', '-c', 'test "$AWS_ACCESS_KEY_ID" = ASIALAZYMODULES00001']);
    t.true(busy.includes('NativeModule child_process'), 'a task loads child_process on its first use');
  });
}
