/**
 * `pnpm bench`: runs every benchmark of issue 7 in one bounded run and
 * writes BENCHMARKS.md. `pnpm bench -- --quick` runs smaller sizes into
 * .tmp/ for a fast smoke run; `--out FILE` writes elsewhere; `--only
 * SECTION[,SECTION]` runs those sections alone (fanout, replicas, memory,
 * coordinator, sts, endpoint, launch, footprint, ssh, imds) into
 * .tmp/BENCHMARKS.only.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMoto, type Moto } from '../tests/helpers/moto.ts';
import { startStsCounter, type StsCounter } from '../tests/helpers/sts-counter.ts';
import { FOOTPRINT_IDLE_MS, runAgentFootprint, runLaunchFloor } from './agent-footprint.ts';
import { runCoordinatorFloors, type CoordinatorFloorsSize } from './coordinator-floors.ts';
import { runEndpoint, type EndpointLoad } from './endpoint.ts';
import { runImdsEndpoint } from './imds-endpoint.ts';
import { AGENT_IDLE_MS, runFanout, type FanoutSize } from './fanout.ts';
import { runReplicaFanout, type ReplicaFanoutSize } from './fanout-replicas.ts';
import { runLaunch } from './launch.ts';
import { runSshLaunchBench } from './ssh-launch.ts';
import { descendantPids } from '../tests/helpers/processes.ts';
import { killAll, killDescendants } from './lib/children.ts';
import { withDeadline } from './lib/deadline.ts';
import { describeMachine } from './lib/machine.ts';
import { AGENTS_PER_SIM_PROCESS } from './lib/sim-fleet.ts';
import { renderReport, type Outcome, type Results } from './report.ts';
import { runStsCalls } from './sts-calls.ts';
import { runMemoryFloor } from './memory-floor.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ANALYSIS = fileURLToPath(new URL('./analysis.md', import.meta.url));

interface Plan {
  fanout: FanoutSize[];
  /** Fan-out through two replicas on Redis. */
  replicaFanout: ReplicaFanoutSize[];
  stsWorkers: number[];
  endpoint: EndpointLoad;
  launchWorkers: number[];
  /** Local workers launched beside as many bare `node -e 0`, and how many times each. */
  launchFloor: { workers: number; rounds: number };
  /** Idle connections of the bare TLS reference server. */
  floorConnections: number;
  /** The coordinator's memory and CPU per agent beside a bare TLS server's, same run. */
  coordinatorFloors: CoordinatorFloorsSize[];
  /** The whole run is cut short after this, whatever is still going. */
  budgetMs: number;
}

const FULL: Plan = {
  fanout: [
    { agents: 100, rounds: 5, refreshIntervalSeconds: 2, memory: false, profile: false },
    { agents: 1_000, rounds: 3, refreshIntervalSeconds: 3, targetP99Ms: 250, memory: true, profile: true },
    { agents: 5_000, rounds: 3, refreshIntervalSeconds: 6, memory: false, profile: false },
    { agents: 10_000, rounds: 3, refreshIntervalSeconds: 8, targetP99Ms: 2_000, memory: true, profile: true },
  ],
  replicaFanout: [
    { agents: 1_000, rounds: 3, refreshIntervalSeconds: 3, targetP99Ms: 250 },
    { agents: 5_000, rounds: 3, refreshIntervalSeconds: 6 },
    { agents: 10_000, rounds: 3, refreshIntervalSeconds: 8, targetP99Ms: 2_000 },
  ],
  stsWorkers: [10, 100, 1_000],
  endpoint: { connections: 8, warmupMs: 1_000, durationMs: 5_000 },
  launchWorkers: [1, 10, 50],
  launchFloor: { workers: 50, rounds: 3 },
  floorConnections: 2_000,
  coordinatorFloors: [{ agents: 2_000, rounds: 5 }],
  // A full run takes 9 to 10 minutes on a quiet 2-core machine; the budget only stops a run that hangs.
  budgetMs: 13 * 60_000,
};

const QUICK: Plan = {
  fanout: [
    { agents: 100, rounds: 3, refreshIntervalSeconds: 2, memory: false, profile: false },
    { agents: 1_000, rounds: 2, refreshIntervalSeconds: 3, targetP99Ms: 250, memory: true, profile: true },
  ],
  replicaFanout: [{ agents: 200, rounds: 2, refreshIntervalSeconds: 2 }],
  stsWorkers: [10, 100],
  endpoint: { connections: 8, warmupMs: 500, durationMs: 2_000 },
  launchWorkers: [1, 10],
  launchFloor: { workers: 10, rounds: 1 },
  floorConnections: 1_000,
  coordinatorFloors: [{ agents: 500, rounds: 3 }],
  budgetMs: 4 * 60_000,
};

/** Deadline of one benchmark stage (a size, a load), on top of what the stage bounds itself. */
const STAGE_DEADLINE_MS = 240_000;
/** File descriptors the coordinator needs beyond one per agent: listener, logs, moto, slack. */
const FD_HEADROOM = 512;

const SECTIONS = ['fanout', 'replicas', 'memory', 'coordinator', 'sts', 'endpoint', 'launch', 'footprint', 'ssh', 'imds'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]): { quick: boolean; out: string | undefined; only: Set<Section> | undefined } {
  const outAt = argv.indexOf('--out');
  const onlyAt = argv.indexOf('--only');
  let only: Set<Section> | undefined;
  if (onlyAt >= 0) {
    const names = (argv[onlyAt + 1] ?? '').split(',');
    const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
    if (unknown.length > 0) throw new Error(`--only takes sections among ${SECTIONS.join(', ')}; not ${unknown.join(', ')}`);
    only = new Set(names as Section[]);
  }
  return { quick: argv.includes('--quick'), out: outAt >= 0 ? argv[outAt + 1] : undefined, only };
}

/** The soft limit on open files that child processes inherit. */
function openFileLimit(): number {
  const answer = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const limit = answer.stdout.trim();
  return limit === 'unlimited' ? Number.POSITIVE_INFINITY : Number(limit);
}

/** The command as the user typed it, for the report. */
function commandLine(argv: string[]): string {
  const args = argv.filter((a) => a !== '--');
  if (process.env.npm_lifecycle_event === 'bench') return `pnpm bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
  return `node bench/run.ts${args.length > 0 ? ` ${args.join(' ')}` : ''}`;
}

/**
 * The launcher side talks to moto only: no AWS identity, config file or
 * endpoint of the developer's can leak in, and STS calls go to moto.
 */
function isolateFromAws(moto: Moto): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
  process.env.AWS_CONFIG_FILE = join(ROOT, '.tmp', 'no-aws-config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(ROOT, '.tmp', 'no-aws-credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function attempt<T>(label: string, work: () => Promise<T>): Promise<Outcome<T>> {
  log(`${label}…`);
  try {
    const value = await withDeadline(work(), STAGE_DEADLINE_MS, label);
    log(`${label}: done`);
    return { ok: true, value };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log(`${label}: FAILED: ${error}`);
    // Whatever the stage left running must not skew the next one.
    killAll();
    return { ok: false, label, error };
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { quick, out, only } = parseArgs(argv);
  const plan = quick ? QUICK : FULL;
  const runs = (section: Section): boolean => only === undefined || only.has(section);
  // A partial run must never overwrite the full report.
  const outFile = out ?? join(ROOT, quick ? '.tmp/BENCHMARKS.quick.md' : only ? '.tmp/BENCHMARKS.only.md' : 'BENCHMARKS.md');
  const profileDir = join(ROOT, '.tmp', 'bench-profiles');
  mkdirSync(profileDir, { recursive: true });
  mkdirSync(dirname(outFile), { recursive: true });
  const started = performance.now();
  const results: Results = { machine: describeMachine(), command: commandLine(argv), totalSeconds: 0, notices: [], fanout: [], replicaFanout: [], memoryFloor: [], coordinatorFloors: [], sts: [], endpoint: [], launch: [], agentFootprint: [], launchFloor: [], sshLaunch: [], imds: [] };
  if (results.machine.loadAtStart > results.machine.cores / 2) {
    // Only the start tells of other work: later, the load average counts this run's own processes.
    results.notices.push(`other work was running when the run started (load ${results.machine.loadAtStart.toFixed(2)} on ${results.machine.cores} cores): timings are pessimistic.`);
  }

  const write = (): void => {
    results.totalSeconds = (performance.now() - started) / 1000;
    const report = renderReport(results, readFileSync(ANALYSIS, 'utf8').trim()).replaceAll(ROOT, '');
    writeFileSync(outFile, report);
    log(`wrote ${relative(process.cwd(), outFile) || outFile}`);
  };
  const watchdog = setTimeout(() => {
    log(`the run outlived its ${plan.budgetMs / 60_000} min budget; stopping everything`);
    killDescendants();
    results.notices.push(`the run was cut short after ${plan.budgetMs / 60_000} min; missing rows did not finish.`);
    write();
    process.exit(1);
  }, plan.budgetMs);
  watchdog.unref();

  const fdLimit = openFileLimit();
  const fits = (s: { agents: number }): boolean => s.agents + FD_HEADROOM <= fdLimit && AGENTS_PER_SIM_PROCESS + FD_HEADROOM <= fdLimit;
  const skipped = [...plan.fanout, ...plan.replicaFanout].filter((s) => !fits(s)).map((s) => s.agents);
  if (skipped.length > 0) {
    const notice = `ulimit -n is ${fdLimit}, too low for ${[...new Set(skipped)].join(', ')} agents (one descriptor per socket); those sizes were skipped. Raise it (ulimit -n 20000) and run again.`;
    log(notice);
    results.notices.push(notice);
  }

  for (const size of plan.fanout.filter((s) => runs('fanout') && fits(s))) results.fanout.push(await attempt(`fan-out, ${size.agents} agents`, () => runFanout(size, profileDir)));
  for (const size of plan.replicaFanout.filter((s) => runs('replicas') && fits(s))) {
    results.replicaFanout.push(await attempt(`fan-out through 2 replicas, ${size.agents} agents`, () => runReplicaFanout(size)));
  }
  if (runs('memory')) results.memoryFloor.push(await attempt('memory floors', () => runMemoryFloor(plan.floorConnections, AGENT_IDLE_MS)));
  for (const size of plan.coordinatorFloors.filter((s) => runs('coordinator') && fits(s))) {
    results.coordinatorFloors.push(await attempt(`coordinator against floors, ${size.agents} agents`, () => runCoordinatorFloors(size)));
  }

  let moto: Moto | undefined;
  let counter: StsCounter | undefined;
  try {
    moto = await startMoto();
    counter = await startStsCounter(moto.url);
    isolateFromAws(moto);
    for (const workers of plan.stsWorkers.filter(() => runs('sts'))) results.sts.push(await attempt(`STS calls, ${workers} workers`, () => runStsCalls(workers, counter!)));
    if (runs('endpoint')) results.endpoint.push(await attempt('credentials endpoint load', () => runEndpoint(moto!, plan.endpoint)));
    if (runs('imds')) results.imds.push(await attempt('instance metadata endpoint load', () => runImdsEndpoint(moto!, plan.endpoint)));
    for (const workers of plan.launchWorkers.filter(() => runs('launch'))) results.launch.push(await attempt(`launch, ${workers} workers`, () => runLaunch(workers)));
    if (runs('footprint')) {
      results.agentFootprint.push(await attempt('agent idle footprint', () => runAgentFootprint(FOOTPRINT_IDLE_MS)));
      const { workers, rounds } = plan.launchFloor;
      results.launchFloor.push(await attempt(`launch against bare node, ${workers} workers`, () => runLaunchFloor(workers, rounds)));
    }
  } finally {
    await counter?.stop();
    await moto?.stop();
  }
  // Null mode, no STS: what is measured is the SSH backend's own cost.
  if (runs('ssh')) results.sshLaunch.push(await attempt('launch over SSH', () => runSshLaunchBench(quick ? { hostCounts: [1, 4], rounds: 1 } : undefined)));

  const leftOver = descendantPids(process.pid).length;
  if (leftOver > 0) {
    log(`${leftOver} processes were still running at the end; killed`);
    killDescendants();
  }
  clearTimeout(watchdog);
  write();
  const failed = [...results.fanout, ...results.replicaFanout, ...results.memoryFloor, ...results.coordinatorFloors, ...results.sts, ...results.endpoint, ...results.launch, ...results.agentFootprint, ...results.launchFloor, ...results.sshLaunch, ...results.imds].filter((o) => !o.ok).length;
  return failed === 0 ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killDescendants();
    process.exit(130);
  });
}

try {
  process.exitCode = await main();
} catch (err) {
  killDescendants();
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
