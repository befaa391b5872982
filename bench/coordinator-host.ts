/**
 * A coordinator in a process of its own, so that its memory and CPU are
 * measured apart from the simulated agents. Driven by bench/run.ts over IPC.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { Coordinator, type ClusterOptions } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import { BENCH_ADMISSION_LIMITS } from './lib/admission.ts';
import { topFunctions, type HotFunction, type CpuProfile } from './lib/cpu-profile.ts';
import { serve } from './lib/worker-side.ts';
import { syntheticCredentials } from './lib/synthetic-credentials.ts';
import { collectAllGarbage } from './lib/collect-garbage.ts';

/** How the cluster gets its credentials. */
export type HostCredentials =
  /** forward mode with temporary launcher credentials: passed through, so a mint is a function call and no STS is involved. */
  | { kind: 'passthrough' }
  /** role mode: one AssumeRole per mint against the STS in AWS_ENDPOINT_URL_STS (moto), signed with these fake keys. */
  | { kind: 'role'; roleArn: string; accessKeyId: string; secretAccessKey: string };

export interface StartParams {
  credentials: HostCredentials;
  refreshIntervalSeconds: number;
}

export interface StartAnswer {
  /** A secret: handed to simulators over IPC and to real agents in CREDFWD_JOIN, never printed. */
  joinString: string;
}

export interface MemoryAnswer {
  rss: number;
  heapUsed: number;
  /** What V8 holds for its heap, used or not. */
  heapTotal: number;
  /** Memory outside the JS heap that V8 knows of (Buffers, native objects that report it). */
  external: number;
}

export interface MeasureParams {
  /** Refreshes to time, starting with the next one. */
  rounds: number;
  /** Acks that complete a round: the agents connected. */
  expected: number;
  timeoutMs: number;
  /** Write a CPU profile of the measured rounds here. */
  profilePath?: string;
  /**
   * Start each refresh here (`Coordinator.refresh`), the next once the last is
   * acknowledged, instead of waiting for the cluster's schedule: for clusters
   * whose interval is longer than the run, so no refresh races the agents joining.
   */
  drive?: boolean;
}

/** One refresh as the coordinator saw it. */
export interface Round {
  seq: number;
  /** Mint start to the moment every push was sealed and handed to its socket ('refreshed'), ms. */
  pushedMs: number | undefined;
  /** Mint start to each agent's ack, ms, in arrival order. */
  latencies: number[];
  /**
   * CPU time (user + system) the coordinator spent from mint start to the
   * last expected ack, ms: unlike wall time, barely moved by other processes
   * on the machine.
   */
  cpuMs: number | undefined;
  /** The same from mint start to every push handed to its socket ('refreshed'): acks that arrived meanwhile are in it. */
  pushCpuMs: number | undefined;
}

export interface MeasureAnswer {
  rounds: Round[];
  hot?: HotFunction[];
}

/** What a launcher credential provider returns (the SDK's AwsCredentialIdentity). */
type AwsCredentialIdentity = Awaited<ReturnType<NonNullable<ClusterOptions['launcher']>>>;

let coordinator: Coordinator | undefined;
let clusterId = '';
let lastMintAt = 0;
let lastMintCpu = process.cpuUsage();
let lastSeq = 0;
/** What the coordinator did for one seq: when its mint started, when its push finished, the acks seen. */
interface Seen {
  mintAt: number;
  mintCpu: NodeJS.CpuUsage;
  pushedAt?: number;
  acks: number[];
  cpuMs?: number;
  pushCpuMs?: number;
}
const seen = new Map<number, Seen>();
/** Acks that complete a round, while measuring. */
let expected = Number.POSITIVE_INFINITY;
let onProgress: (() => void) | undefined;

function entry(seq: number): Seen {
  let found = seen.get(seq);
  if (!found) {
    // Mints run one at a time and each is published before the next starts, so the latest mint made this seq.
    found = { mintAt: lastMintAt, mintCpu: lastMintCpu, acks: [] };
    seen.set(seq, found);
  }
  return found;
}

async function start(params: StartParams): Promise<StartAnswer> {
  const logger = createLogger({ name: 'bench-coordinator', level: 'warn' });
  const c = await Coordinator.start({ logger, limits: BENCH_ADMISSION_LIMITS });
  coordinator = c;
  const launcher = async (): Promise<AwsCredentialIdentity> => {
    lastMintAt = performance.now();
    lastMintCpu = process.cpuUsage();
    const creds = params.credentials;
    return creds.kind === 'passthrough' ? syntheticCredentials() : { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey };
  };
  c.on('refreshed', (_cluster, seq) => {
    lastSeq = Math.max(lastSeq, seq);
    const round = entry(seq);
    round.pushedAt = performance.now();
    const cpu = process.cpuUsage(round.mintCpu);
    round.pushCpuMs = (cpu.user + cpu.system) / 1000;
    onProgress?.();
  });
  c.hub.on('agent-ready', (_cluster, _agent, seq) => {
    // Only while measuring: acks during the ramp-up would only cost memory that the memory benchmark counts.
    if (seq <= 0 || !onProgress) return;
    const round = entry(seq);
    round.acks.push(performance.now());
    if (round.acks.length === expected) {
      const cpu = process.cpuUsage(round.mintCpu);
      round.cpuMs = (cpu.user + cpu.system) / 1000;
    }
    onProgress();
  });
  const creds = params.credentials;
  const record = await c.createCluster({
    credentials: creds.kind === 'passthrough' ? 'forward' : { roleArn: creds.roleArn },
    region: 'us-east-1',
    refreshIntervalSeconds: params.refreshIntervalSeconds,
    launcher,
  });
  clusterId = record.id;
  return { joinString: record.joinString };
}

async function memory(): Promise<MemoryAnswer> {
  await collectAllGarbage();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

async function profileWhile<T>(path: string | undefined, work: () => Promise<T>): Promise<{ value: T; hot?: HotFunction[] }> {
  if (!path) return { value: await work() };
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 200 µs rather than the default 1 ms: a refresh of 1,000 agents is over in about 100 ms.
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    const value = await work();
    const { profile } = await session.post('Profiler.stop');
    await writeFile(path, JSON.stringify(profile));
    return { value, hot: topFunctions(profile as CpuProfile, 12) };
  } finally {
    session.disconnect();
  }
}

function measure(params: MeasureParams): Promise<MeasureAnswer> {
  const after = lastSeq;
  // A refresh already under way when measuring starts had some acks go unrecorded: only refreshes minted from now count.
  const startedAt = performance.now();
  const timed = ([seq, s]: [number, Seen]): boolean => seq > after && s.mintAt >= startedAt;
  expected = params.expected;
  for (const seq of seen.keys()) if (seq <= after) seen.delete(seq);
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(() => finish(), params.timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      onProgress = undefined;
      expected = Number.POSITIVE_INFINITY;
      resolve();
    };
    let driven = 0;
    const drive = (): void => {
      driven++;
      coordinator?.refresh(clusterId).catch(() => finish());
    };
    onProgress = () => {
      const complete = [...seen.entries()].filter(([seq, s]) => timed([seq, s]) && s.acks.length >= params.expected && s.pushedAt !== undefined);
      if (complete.length >= params.rounds) finish();
      else if (params.drive && complete.length === driven) drive();
    };
    if (params.drive) drive();
  });
  return profileWhile(params.profilePath, () => done).then(({ hot }) => {
    const rounds = [...seen.entries()]
      .filter(timed)
      .sort(([a], [b]) => a - b)
      .slice(0, params.rounds)
      .map(([seq, s]) => ({
        seq,
        pushedMs: s.pushedAt === undefined ? undefined : s.pushedAt - s.mintAt,
        latencies: s.acks.map((at) => at - s.mintAt),
        cpuMs: s.cpuMs,
        pushCpuMs: s.pushCpuMs,
      }));
    return { rounds, ...(hot ? { hot } : {}) };
  });
}

serve({
  start: (params) => start(params as StartParams),
  readyCount: () => coordinator?.hub.readyAgents(clusterId).length ?? 0,
  memory: () => memory(),
  measure: (params) => measure(params as MeasureParams),
  stop: async () => {
    await coordinator?.close();
    setImmediate(() => process.exit(0));
  },
});
