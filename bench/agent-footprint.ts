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

/**
 * How long agents idle before their RSS is read. V8's memory reducer makes a
 * first full GC 8 s after start and a second, which also shrinks the young
 * generation by about 0.75 MiB, only once the agent's allocation rate reads
 * low: up to 40 s later in traced agents (bench/analysis.md). Read at 20 s,
 * an idle agent was at one of two sizes; at 60 s, 8 agents of 9 were at the
 * smaller, where traced agents stayed for the 130 s watched.
 */
export const FOOTPRINT_IDLE_MS = 60_000;

/** Idle RSS of the agent and of its floors, all run by the same Node binary at the same time. */
export interface IdleFootprint {
  nodeVersion: string;
  agentBytes: number;
  bareBytes: number;
  /** A `node` that only holds one idle TLS connection as the agent holds its own: what any agent of a TLS coordinator costs at least. */
  tlsClientBytes: number;
  /** The same connection held by an ES module that also loads `https` and serves HTTP on loopback: the parts of Node the agent uses, without the agent. */
  nodePartsBytes: number;
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

/** A TLS server with the coordinator's kind of certificate that echoes, for the floors; `cert` is what a floor pins. */
async function echoServer(): Promise<{ server: Server; cert: string }> {
  const identity = await createSelfSignedIdentity();
  const server = createServer({ cert: identity.cert, key: identity.key }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, cert: identity.cert };
}

/**
 * Connects as the agent does (trusting only the pinned certificate, so that
 * OpenSSL loads no certificate authorities), exchanges about a credentials
 * push's worth of bytes, then idles. `require` is CommonJS's, or the banner's.
 */
function tlsClientScript(port: number, cert: string): string {
  return `const s = require('node:tls').connect({ host: '127.0.0.1', port: ${port}, ca: [${JSON.stringify(cert)}], checkServerIdentity: () => undefined }, () => s.write('x'.repeat(1200))); s.on('data', () => {}); setInterval(() => {}, 60_000);`;
}

/** What the agent adds to that connection from Node: ws's client loads `https`; the credentials endpoint serves HTTP on loopback. */
const NODE_PARTS_SCRIPT = `require('node:https'); require('node:http').createServer((request, response) => response.end()).listen(0, '127.0.0.1');`;

/**
 * Agents joined to a role cluster on moto, holding credentials, beside as
 * many bare `node`s and both floors, started at the same moment by the same
 * binary with the agent's Node options; all are read `idleMs` after the last
 * agent acknowledged its credentials. Agent and bare figures are medians of
 * IDLE_AGENTS.
 */
async function idleFootprint(node: string, idleMs: number, floors: { tlsClient: string; nodeParts: string }): Promise<IdleFootprint> {
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
    const tlsClient = spawnTracked(node, [...AGENT.nodeArgs, '-e', floors.tlsClient], {});
    const nodeParts = spawnTracked(node, [...AGENT.nodeArgs, floors.nodeParts], {});
    const agents = Array.from({ length: IDLE_AGENTS }, (_, i) => spawnTracked(node, [...AGENT.nodeArgs, AGENT.file, 'join'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', CREDFWD_JOIN: cluster.joinString, CREDFWD_AGENT_ID: `footprint-${i}`, CREDFWD_LOG_LEVEL: 'warn' },
    }));
    started.push(...bares, tlsClient, nodeParts, ...agents);
    const exited = Promise.race([...agents, tlsClient, nodeParts].map((p) => p.exited.then(() => { throw new Error(`a measured process exited before it was read: ${p.stderrTail()}`); })));
    await withDeadline(Promise.race([ready, exited]), READY_DEADLINE_MS, `${IDLE_AGENTS} agents holding their credentials`);
    await Promise.race([sleep(idleMs), exited]);
    const rss = (p: Tracked): Promise<number> => {
      if (p.child.pid === undefined) throw new Error('a process did not start');
      return residentBytes(p.child.pid);
    };
    const median = async (ps: Tracked[]): Promise<number> => summarise(await Promise.all(ps.map(rss))).p50;
    const [agentBytes, bareBytes, tlsClientBytes, nodePartsBytes] = await Promise.all([median(agents), median(bares), rss(tlsClient), rss(nodeParts)]);
    return { nodeVersion: nodeVersion(node), agentBytes, bareBytes, tlsClientBytes, nodePartsBytes };
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await cluster.close();
  }
}

/** Idle RSS under each Node binary, measured side by side, and the size of the bundle workers are handed. */
export async function runAgentFootprint(idleMs: number): Promise<AgentFootprintResult> {
  const { server, cert } = await echoServer();
  const port = (server.address() as AddressInfo).port;
  // A .mjs file, loaded the way the agent's is; the bundle's banner gives it require().
  const scratch = mkdtempSync(join(tmpdir(), 'credfwd-bench-'));
  const tlsClient = tlsClientScript(port, cert);
  const nodeParts = join(scratch, 'node-parts.mjs');
  writeFileSync(nodeParts, `${AGENT_BUNDLE_BANNER}\n${tlsClient}\n${NODE_PARTS_SCRIPT}\n`);
  try {
    const idle = await Promise.all(nodes().map((node) => idleFootprint(node, idleMs, { tlsClient, nodeParts })));
    const bundle = readFileSync(AGENT.file);
    return { idle, bundleBytes: bundle.length, bundleGzipBytes: gzipSync(bundle).length };
  } finally {
    server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
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
