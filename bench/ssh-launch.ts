/**
 * Launch over SSH to 1, 4 and 8 hosts (network namespaces on this machine,
 * each with its own sshd), the first run uploading the one-file agent and
 * the second finding it cached, beside a local launch of the same worker
 * count measured in the same run. `node bench/ssh-launch.ts` prints the
 * section alone; `pnpm bench` registers {@link runSshLaunchBench}.
 */
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { defaultAgentProgram, launchCluster, type LaunchOptions } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import { leftoverProcesses, sshHostsUnavailable, startSshHosts } from '../tests/helpers/ssh-hosts.ts';
import { num, table } from './lib/markdown.ts';

/** The one-file agent `pnpm build` writes: what a first run uploads to each host. */
const BUNDLE = defaultAgentProgram().file;
const READY_TIMEOUT_MS = 60_000;
const LEFTOVER_MS = 10_000;

/** One host count's timings, in seconds from `launchCluster` called to every worker joined. */
export interface SshLaunchRow {
  hosts: number;
  /** One agent per host, so also the local worker count. */
  workers: number;
  /** `launchCluster({ workers: N })` on this machine: the floor the SSH launch is measured against. */
  localSeconds: number;
  /** First launch on fresh hosts: probe, upload of the agent, sessions, tunnels, joins. */
  firstSeconds: number;
  /** Median of the later launches: the agent is found by hash and not uploaded. */
  cachedSeconds: number;
  /** Median `close()` of the cached launches: every remote agent stopped. */
  closeSeconds: number;
}

export interface SshLaunchBench {
  rows: SshLaunchRow[];
  /** Why nothing was measured (no root, no sshd), or undefined. */
  skipped?: string;
  /** A Markdown section for BENCHMARKS.md. */
  markdown: string;
}

export interface SshLaunchPlan {
  hostCounts: number[];
  /** Cached SSH launches and local launches per host count; medians are reported. */
  rounds: number;
}

const DEFAULT_PLAN: SshLaunchPlan = { hostCounts: [1, 4, 8], rounds: 3 };
const quiet = createLogger({ name: 'bench-ssh-launch', level: 'warn' });

/** Seconds from the call to every worker joined, and the seconds `close()` took. */
async function timeLaunch(options: LaunchOptions): Promise<{ ready: number; close: number }> {
  const started = performance.now();
  const cluster = await launchCluster({ credentials: null, logger: quiet, readyTimeoutMs: READY_TIMEOUT_MS, ...options });
  const ready = performance.now();
  await cluster.close();
  return { ready: (ready - started) / 1000, close: (performance.now() - ready) / 1000 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/**
 * One host count: fresh hosts (empty caches), a first launch that uploads,
 * then `rounds` cached launches interleaved with as many local launches, so
 * both see the same machine load. Null mode: no STS call, so the figures are
 * the backends' own cost. Hosts are torn down even when a launch fails.
 */
async function measure(hostCount: number, rounds: number): Promise<SshLaunchRow> {
  const hosts = await startSshHosts(Array.from({ length: hostCount }, () => ({})));
  try {
    const ssh: LaunchOptions = { hosts: hosts.hosts.map((h) => h.alias), ssh: { configFile: hosts.configFile } };
    const first = await timeLaunch(ssh);
    const cached: { ready: number; close: number }[] = [];
    const local: number[] = [];
    for (let round = 0; round < rounds; round++) {
      cached.push(await timeLaunch(ssh));
      local.push((await timeLaunch({ workers: hostCount })).ready);
    }
    // A benchmark that leaves agents behind measures a launch that did not finish its job.
    const left = await leftoverProcesses(hosts.hosts, LEFTOVER_MS);
    if (left.length > 0) throw new Error(`processes left on the hosts after close: ${left.join('; ')}`);
    return {
      hosts: hostCount,
      workers: hostCount,
      localSeconds: median(local),
      firstSeconds: first.ready,
      cachedSeconds: median(cached.map((c) => c.ready)),
      closeSeconds: median(cached.map((c) => c.close)),
    };
  } finally {
    await hosts.stop();
  }
}

/** Runs the plan and renders its section; skips, saying why, where namespaces or sshd are unavailable. */
export async function runSshLaunchBench(plan: SshLaunchPlan = DEFAULT_PLAN): Promise<SshLaunchBench> {
  const skipped = sshHostsUnavailable();
  if (skipped) return { rows: [], skipped, markdown: renderSshLaunch([], plan, skipped) };
  const rows: SshLaunchRow[] = [];
  for (const hostCount of plan.hostCounts) rows.push(await measure(hostCount, plan.rounds));
  return { rows, markdown: renderSshLaunch(rows, plan) };
}

/** The Markdown section for these rows. */
export function renderSshLaunch(rows: readonly SshLaunchRow[], plan: SshLaunchPlan, skipped?: string): string {
  const bundleKiB = statSync(BUNDLE).size / 1024;
  const body = skipped
    ? `Not measured: ${skipped}.`
    : table(
      ['hosts', 'workers', 'local launch, s', 'SSH first run (upload), s', 'SSH cached run, s', 'cached over local', 'SSH close, s'],
      rows.map((r) => [num(r.hosts), num(r.workers), num(r.localSeconds, 2), num(r.firstSeconds, 2), num(r.cachedSeconds, 2), `${num(r.cachedSeconds / r.localSeconds, 1)}×`, num(r.closeSeconds, 2)]),
    );
  return [
    '## Launch over SSH',
    '',
    '`launchCluster({ hosts, ssh, credentials: null })`, one agent per host, from the call to every agent joined through its',
    'reverse tunnel. Each host is a network namespace on this machine with its own sshd (`tests/helpers/ssh-hosts.ts`), so the',
    'figures are the cost of ssh itself (key exchange, probe, upload, one session per agent), not of a network. The first run',
    `starts on fresh hosts and uploads the ${num(bundleKiB)} KiB agent; cached runs find it by hash. The local launch of the`,
    `same worker count runs between the cached ones in the same run. Medians of ${plan.rounds} rounds; the first run is one.`,
    '',
    body,
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { markdown } = await runSshLaunchBench();
  process.stdout.write(markdown);
}
