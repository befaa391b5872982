import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { createSelfSignedIdentity, defaultAgentProgram, launchCluster } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import { AGENT_BUNDLE_BANNER } from '../scripts/agent-bundle-banner.ts';
import { spawnTracked, type Tracked } from './lib/children.ts';
import { sleep, withDeadline } from './lib/deadline.ts';
import { residentBytes } from './lib/real-agent.ts';
import { summarise } from './lib/stats.ts';
import { BENCH_ROLE_ARN, MOTO_LAUNCHER } from './sts-calls.ts';

/** The one-file agent `pnpm build` writes, and the Node options it is started with: what workers run. */
const AGENT = defaultAgentProgram();
/** The distribution's Node, as older worker images carry it: measured too when present. */
const SYSTEM_NODE = '/usr/bin/node';
const READY_DEADLINE_MS = 30_000;
/** Agents (and bare Nodes) measured together under each Node binary. */
const IDLE_AGENTS = 3;

/** Idle RSS of the agent and of its floors, all run by the same Node binary at the same time. */
export interface IdleFootprint {
  nodeVersion: string;
  agentBytes: number;
  bareBytes: number;
  /** A `node` that only holds one idle TLS connection: what any agent of a TLS coordinator costs at least. */
  tlsClientBytes: number;
  /** The same connection held by a one-file ES module, as the agent is: Node's ES module loader adds its own cost. */
  esmTlsClientBytes: number;
}

export interface AgentFootprintResult {
  idle: IdleFootprint[];
  bundleBytes: number;
  bundleGzipBytes: number;
}

/** Local workers ready beside as many bare Node processes started at once, medians of `rounds`. */
export interface LaunchFloorResult {
  workers: number;
  rounds: number;
  clusterReadySeconds: number;
  bareNodeSeconds: number;
}

function nodeVersion(node: string): string {
  return spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** The Node binaries to measure: this one, and the system's if it is another. */
function nodes(): string[] {
  const own = realpathSync(process.execPath);
  return existsSync(SYSTEM_NODE) && realpathSync(SYSTEM_NODE) !== own ? [own, SYSTEM_NODE] : [own];
}

/** A TLS server with the coordinator's kind of certificate that echoes, for the TLS-client floor. */
async function echoServer(): Promise<Server> {
  const identity = await createSelfSignedIdentity();
  const server = createServer({ cert: identity.cert, key: identity.key }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Connects, exchanges about a credentials push's worth of bytes, then idles. */
function tlsClientScript(port: number): string {
  return `const s = require('node:tls').connect({ host: '127.0.0.1', port: ${port}, rejectUnauthorized: false }, () => s.write('x'.repeat(1200))); s.on('data', () => {}); setInterval(() => {}, 60_000);`;
}

/**
 * Agents joined to a role cluster on moto, holding credentials, beside as
 * many bare `node`s and a `node` holding one TLS connection, started at the
 * same moment by the same binary; all are read `idleMs` after the last agent
 * acknowledged its credentials. Agent and bare figures are medians: V8's
 * memory reducer leaves an idle agent at one of two sizes about 1 MiB apart.
 */
async function idleFootprint(node: string, idleMs: number, tlsPort: number, esmFile: string): Promise<IdleFootprint> {
  const cluster = await launchCluster({
    workers: 0,
    credentials: { roleArn: BENCH_ROLE_ARN },
    region: 'us-east-1',
    launcher: async () => MOTO_LAUNCHER,
    logger: createLogger({ name: 'bench-footprint', level: 'warn' }),
  });
  const started: Tracked[] = [];
  try {
    let joined = 0;
    const ready = new Promise<void>((resolve) => cluster.on('agent-ready', () => { if (++joined === IDLE_AGENTS) resolve(); }));
    const bares = Array.from({ length: IDLE_AGENTS }, () => spawnTracked(node, ['-e', 'setInterval(() => {}, 60_000)'], {}));
    const tlsClient = spawnTracked(node, ['-e', tlsClientScript(tlsPort)], {});
    const esmTlsClient = spawnTracked(node, [esmFile], {});
    const agents = Array.from({ length: IDLE_AGENTS }, (_, i) => spawnTracked(node, [...AGENT.nodeArgs, AGENT.file, 'join'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', CREDFWD_JOIN: cluster.joinString, CREDFWD_AGENT_ID: `footprint-${i}`, CREDFWD_LOG_LEVEL: 'warn' },
    }));
    started.push(...bares, tlsClient, esmTlsClient, ...agents);
    const exited = Promise.race(agents.map((agent) => agent.exited.then(() => { throw new Error(`an agent exited before it was ready: ${agent.stderrTail()}`); })));
    await withDeadline(Promise.race([ready, exited]), READY_DEADLINE_MS, `${IDLE_AGENTS} agents holding their credentials`);
    await sleep(idleMs);
    const rss = (p: Tracked): Promise<number> => {
      if (p.child.pid === undefined) throw new Error('a process did not start');
      return residentBytes(p.child.pid);
    };
    const median = async (ps: Tracked[]): Promise<number> => summarise(await Promise.all(ps.map(rss))).p50;
    const [agentBytes, bareBytes, tlsClientBytes, esmTlsClientBytes] = await Promise.all([median(agents), median(bares), rss(tlsClient), rss(esmTlsClient)]);
    return { nodeVersion: nodeVersion(node), agentBytes, bareBytes, tlsClientBytes, esmTlsClientBytes };
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await cluster.close();
  }
}

/** Idle RSS under each Node binary, and the size of the bundle workers are handed. */
export async function runAgentFootprint(idleMs: number): Promise<AgentFootprintResult> {
  const idle: IdleFootprint[] = [];
  const server = await echoServer();
  const port = (server.address() as AddressInfo).port;
  // A .mjs file, loaded the way the agent's is; the bundle's banner gives it require().
  const scratch = mkdtempSync(join(tmpdir(), 'credfwd-bench-'));
  const esmFile = join(scratch, 'tls-client.mjs');
  writeFileSync(esmFile, `${AGENT_BUNDLE_BANNER}\n${tlsClientScript(port)}\n`);
  try {
    for (const node of nodes()) idle.push(await idleFootprint(node, idleMs, port, esmFile));
  } finally {
    server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  const bundle = readFileSync(AGENT.file);
  return { idle, bundleBytes: bundle.length, bundleGzipBytes: gzipSync(bundle).length };
}

/** Seconds until `count` processes of `node -e 0`, all started at once, have exited: the floor under starting agents. */
async function bareNodes(count: number): Promise<number> {
  const started = performance.now();
  const all = Array.from({ length: count }, () => spawnTracked(process.execPath, ['-e', '0'], {}));
  await Promise.all(all.map((p) => p.exited));
  return (performance.now() - started) / 1000;
}

/** Seconds from `launchCluster({ workers })` (null mode: no STS) to every local worker joined. */
async function clusterReady(workers: number): Promise<number> {
  const started = performance.now();
  const cluster = await launchCluster({ workers, credentials: null, logger: createLogger({ name: 'bench-launch-floor', level: 'warn' }), readyTimeoutMs: 120_000 });
  const seconds = (performance.now() - started) / 1000;
  await cluster.close();
  return seconds;
}

/** Alternates the two, so that a machine busy for a moment slows both sides alike. */
export async function runLaunchFloor(workers: number, rounds: number): Promise<LaunchFloorResult> {
  const cluster: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < rounds; round++) {
    bare.push(await bareNodes(workers));
    cluster.push(await clusterReady(workers));
  }
  return { workers, rounds, clusterReadySeconds: summarise(cluster).p50, bareNodeSeconds: summarise(bare).p50 };
}
