import { FOOTPRINT_IDLE_MS, type AgentFootprintResult, type LaunchFloorResult } from './agent-footprint.ts';
import type { CoordinatorFloorsResult } from './coordinator-floors.ts';
import { coordinatorFloorsSection } from './coordinator-floors-section.ts';
import type { EndpointResult } from './endpoint.ts';
import { imdsEndpointSection, type ImdsEndpointResult } from './imds-endpoint.ts';
import { AGENT_IDLE_MS, type FanoutResult } from './fanout.ts';
import type { ReplicaFanoutResult } from './fanout-replicas.ts';
import type { LaunchResult } from './launch.ts';
import type { Machine } from './lib/machine.ts';
import { num, table, verdict } from './lib/markdown.ts';
import { AGENTS_PER_SIM_PROCESS } from './lib/sim-fleet.ts';
import { STS_REQUESTS_PER_SECOND, type StsResult } from './sts-calls.ts';
import type { MemoryFloorResult } from './memory-floor.ts';
import type { SshLaunchBench } from './ssh-launch.ts';

/** A benchmark's result, or why it has none. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; label: string; error: string };

export interface Results {
  machine: Machine;
  command: string;
  totalSeconds: number;
  /** Things the reader must know: skipped sizes, a low file-descriptor limit. */
  notices: string[];
  fanout: Outcome<FanoutResult>[];
  replicaFanout: Outcome<ReplicaFanoutResult>[];
  memoryFloor: Outcome<MemoryFloorResult>[];
  coordinatorFloors: Outcome<CoordinatorFloorsResult>[];
  sts: Outcome<StsResult>[];
  endpoint: Outcome<EndpointResult>[];
  launch: Outcome<LaunchResult>[];
  agentFootprint: Outcome<AgentFootprintResult>[];
  launchFloor: Outcome<LaunchFloorResult>[];
  sshLaunch: Outcome<SshLaunchBench>[];
  imds: Outcome<ImdsEndpointResult>[];
}

/** Targets from issue 7. */
export const TARGETS = {
  perAgentKiB: 30,
  agentIdleMiB: 50,
  endpointRps: 10_000,
  endpointP99Ms: 2,
  floodP99Ms: 100,
  /** Agent idle RSS over a bare `node`'s, the same binary in the same run. */
  agentOverBareMiB: 10,
  /** Local workers ready against as many bare `node -e 0` started at once. */
  launchOverBareRatio: 3,
} as const;

const KiB = 1024;
const MiB = 1024 * 1024;

function failures<T>(outcomes: Outcome<T>[]): string {
  const failed = outcomes.filter((o): o is Extract<Outcome<T>, { ok: false }> => !o.ok);
  return failed.map((f) => `\n\n*${f.label}: no result (${f.error.replaceAll('|', '/')}).*`).join('');
}

function values<T>(outcomes: Outcome<T>[]): T[] {
  return outcomes.flatMap((o) => (o.ok ? [o.value] : []));
}

function fanoutSection(outcomes: Outcome<FanoutResult>[]): string {
  const rows = values(outcomes).map((r) => {
    const target = r.size.targetP99Ms;
    const complete = r.missingAcks === 0 && r.failedToConnect === 0 && r.badPushes === 0;
    return [
      num(r.connected),
      `${num(r.size.rounds)} × ${num(r.connected)}`,
      num(r.latency.p50),
      num(r.latency.p99),
      num(r.latency.max),
      num(r.pushedMs),
      num(r.cpuPerAgentUs),
      target === undefined ? '—' : `p99 < ${num(target)}`,
      target === undefined ? '—' : verdict(complete && r.latency.p99 < target),
      num(r.connectSeconds, 1),
      `${num(r.failedToConnect)} / ${num(r.missingAcks)} / ${num(r.badPushes)}`,
    ];
  });
  return [
    '## Fan-out: mint to last ack',
    '',
    `Simulated agents in separate processes (${num(AGENTS_PER_SIM_PROCESS)} a process at most) each do the real TLS handshake with the pinned certificate, the`,
    'hello/challenge/proof/welcome handshake, and open and schema-check every sealed push before acknowledging it. The cluster',
    'runs in forward mode with temporary launcher credentials, so a mint is a function call: the clock starts at the mint',
    'and stops at each agent\'s ack as the coordinator sees it (hub `agent-ready` with the new seq). "All pushes sent" is when',
    'the last sealed push was handed to its socket (the coordinator\'s `refreshed` event). Refreshes come from the cluster\'s',
    'own scheduler (`refreshIntervalSeconds`). The coordinator runs in a process of its own, but all processes',
    'share the machine\'s cores: simulators opening their pushes compete with the coordinator sealing them. The',
    'coordinator\'s CPU time per agent (user + system, from mint to the last ack, acks included) is the steadier number on a',
    'shared machine: with agents on machines of their own, the last ack would come after about agents × that. The',
    'coordinator\'s admission limits (200 new handshakes a second by default, for floods) are raised here so the fleet joins at',
    'once: the benchmark times refreshes, not joining; `tests/mass-reconnect.test.ts` covers joining under the cap.',
    '',
    table(['agents', 'acks timed', 'p50 ms', 'p99 ms', 'max ms', 'all pushes sent, ms', 'coordinator CPU per agent, µs', 'target', 'result', 'connect all, s', 'failed connects / missing acks / bad pushes'], rows),
    ...values(outcomes).filter((r) => r.connectFailures.length > 0).map((r) => `\n${num(r.connected)} agents, failed connection attempts, each retried: ${r.connectFailures.join('; ')}.`),
    failures(outcomes),
  ].join('\n');
}

function replicaFanoutSection(outcomes: Outcome<ReplicaFanoutResult>[], single: Outcome<FanoutResult>[]): string {
  const singleP99 = (agents: number): string => num(values(single).find((r) => r.size.agents === agents)?.latency.p99);
  const rows = values(outcomes).map((r) => {
    const target = r.size.targetP99Ms;
    const complete = r.missingAcks === 0 && r.failedToConnect === 0 && r.badPushes === 0;
    return [
      num(r.connected),
      r.perReplica.map((p) => num(p.agents)).join(' / '),
      `${num(r.size.rounds)} × ${num(r.connected)}`,
      num(r.latency.p50),
      num(r.latency.p99),
      num(r.latency.max),
      target === undefined ? '—' : `p99 < ${num(target)}`,
      target === undefined ? '—' : verdict(complete && r.latency.p99 < target),
      singleP99(r.size.agents),
      `${num(r.cpuPerAgentUs.replicas)} / ${num(r.cpuPerAgentUs.redis)} / ${num(r.cpuPerAgentUs.simulators)}`,
      num(r.connectSeconds, 1),
      `${num(r.failedToConnect)} / ${num(r.missingAcks)} / ${num(r.badPushes)}`,
    ];
  });
  const split = values(outcomes).flatMap((r) => r.perReplica.map((p, i) => [
    num(r.connected),
    i === 0 ? `${i + 1} (created the cluster)` : String(i + 1),
    num(p.agents),
    num(p.latency.count),
    num(p.latency.p50),
    num(p.latency.p99),
    num(p.latency.max),
  ]));
  return [
    '## Fan-out through 2 replicas on Redis: mint to last ack',
    '',
    'The same simulated agents, joined to a distributed service instead: two replicas (the `Replica` API that `credfwd serve`',
    'runs, each in a process of its own, with the admission limits raised as above) sharing a private `redis-server` that the',
    'benchmark starts on a free port. One role cluster is created through the first replica\'s admin API; its join string lists',
    'both replicas and each agent starts with the one its id picks, as a real agent does (the split is the "agents per',
    'replica" column). Each refresh is a BullMQ job that one replica runs: it mints, stores the sealed credentials in Redis and',
    'announces them over pub/sub; each replica then loads and unseals them and seals them again to each of its agents. The',
    'replicas mint with their own identity through STS, here a stub STS in the benchmark process that answers AssumeRole at',
    'once (as cheap as the passthrough mint above): the clock starts when the stub receives the refresh\'s AssumeRole and',
    'stops at each agent\'s ack as its replica sees it (hub `agent-ready`), on CLOCK_MONOTONIC, which all processes of the',
    'machine share. Redis, both replicas and the simulators share the machine\'s cores; the CPU columns say where their time',
    'went (from /proc, over the whole timed window, so the idle seconds between refreshes are in them too), divided by the',
    'acks timed.',
    '',
    table(['agents', 'agents per replica', 'acks timed', 'p50 ms', 'p99 ms', 'max ms', 'target', 'result', 'one coordinator, p99 ms (above)', 'CPU per agent per refresh, µs: replicas / Redis / simulators', 'connect all, s', 'failed connects / missing acks / bad pushes'], rows),
    '',
    'Per replica:',
    '',
    table(['agents', 'replica', 'agents held', 'acks timed', 'p50 ms', 'p99 ms', 'max ms'], split),
    ...values(outcomes).filter((r) => r.connectFailures.length > 0).map((r) => `\n${num(r.connected)} agents, failed connection attempts, each retried: ${r.connectFailures.join('; ')}.`),
    failures(outcomes),
  ].join('\n');
}

function memorySection(outcomes: Outcome<FanoutResult>[], floor: Outcome<MemoryFloorResult>[]): string {
  const reference = values(floor).map((f) => [
    `Floors on this machine, measured in the same run: a bare \`node:tls\` server (no websocket, no credfwd) holding`,
    `${num(f.connections)} idle connections costs **${num(f.tlsPerConnectionBytes / KiB, 1)} KiB** of RSS per connection; an idle \`node\` that has loaded`,
    `nothing has an RSS of **${num(f.bareNodeBytes / MiB, 1)} MiB**.`,
  ].join('\n'));
  const rows = values(outcomes).flatMap((r) => {
    const m = r.memory;
    if (!m) return [];
    return [[
      num(r.connected),
      num(m.coordinatorBaselineBytes / MiB, 1),
      num(m.coordinatorBytes / MiB, 1),
      num(m.perAgentBytes / KiB, 1),
      num(m.perAgentHeapBytes / KiB, 1),
      verdict(m.perAgentBytes / KiB < TARGETS.perAgentKiB),
      num(m.agentIdleBytes / MiB, 1),
      verdict(m.agentIdleBytes / MiB < TARGETS.agentIdleMiB),
    ]];
  });
  return [
    '## Memory',
    '',
    'Coordinator RSS after collecting all the garbage V8 can (bench/lib/collect-garbage.ts), before any agent and with every agent connected and holding credentials;',
    'the difference divided by the agents is the cost of one connection (TLS socket, websocket, session, key). Agent idle RSS',
    `is VmRSS of a real \`credfwd-agent join\` process, joined to the same cluster, ${num(AGENT_IDLE_MS / 1000)} s after it acknowledged its credentials.`,
    '',
    table(['agents', 'coordinator before, MiB', 'coordinator after, MiB', `per agent, KiB (target < ${TARGETS.perAgentKiB})`, 'of which JS heap, KiB', 'result', `agent idle RSS, MiB (target < ${TARGETS.agentIdleMiB})`, 'result'], rows),
    '',
    ...reference,
    failures(floor),
  ].join('\n');
}

function stsSection(outcomes: Outcome<StsResult>[]): string {
  const rows = values(outcomes).map((r) => [
    num(r.workers),
    num(r.baseline.calls),
    num(r.baseline.seconds, 2),
    num(r.baseline.errors),
    num(r.credfwd.calls),
    num(r.credfwd.seconds, 2),
    num(r.credfwd.errors),
    num(r.workers / STS_REQUESTS_PER_SECOND, 2),
  ]);
  return [
    '## STS calls per refresh',
    '',
    'Both sides against the same moto STS in the same run, counted by a proxy in front of it. **Baseline**: every worker calls',
    'AssumeRole itself (one SDK client each, as separate machines would; 32 in flight, so single-threaded moto is not',
    'drowned). **credfwd**: one refresh of a role-mode cluster of simulated agents, timed from the start of the mint (the',
    'AssumeRole call included) to the last ack. The last column is the least time STS\'s quota of',
    `${STS_REQUESTS_PER_SECOND} requests a second per account and region (not raisable) allows the baseline, whatever the client does.`,
    '',
    table(['workers', 'baseline STS calls', 'baseline wall, s', 'baseline errors', 'credfwd STS calls', 'credfwd wall, s', 'credfwd errors', `baseline floor at ${STS_REQUESTS_PER_SECOND}/s, s`], rows),
    failures(outcomes),
  ].join('\n');
}

function endpointSection(outcomes: Outcome<EndpointResult>[]): string {
  const rows = values(outcomes).flatMap((r) => [
    ['credfwd agent endpoint', num(r.credfwd.requestsPerSecond), num(r.credfwd.latency.p50, 2), num(r.credfwd.latency.p99, 2), num(r.credfwd.latency.max, 1), num(r.credfwd.errors),
      verdict(r.credfwd.errors === 0 && r.credfwd.requestsPerSecond > TARGETS.endpointRps && r.credfwd.latency.p99 < TARGETS.endpointP99Ms)],
    ['credfwd endpoint, right token, during a wrong-token flood', num(r.duringFlood.legitimate.requestsPerSecond), num(r.duringFlood.legitimate.latency.p50, 2),
      num(r.duringFlood.legitimate.latency.p99, 2), num(r.duringFlood.legitimate.latency.max, 1), num(r.duringFlood.legitimate.errors),
      verdict(r.duringFlood.legitimate.errors === 0 && r.duringFlood.legitimate.latency.p99 < TARGETS.floodP99Ms)],
    ['the flood itself (401, then 429)', num(r.duringFlood.flood.requestsPerSecond), num(r.duringFlood.flood.latency.p50, 2), num(r.duringFlood.flood.latency.p99, 2),
      num(r.duringFlood.flood.latency.max, 1), '—', '—'],
    ['moto instance metadata', num(r.imds.requestsPerSecond), num(r.imds.latency.p50, 2), num(r.imds.latency.p99, 2), num(r.imds.latency.max, 1), num(r.imds.errors), '—'],
  ]);
  const load = values(outcomes)[0]?.load;
  return [
    '## Credentials endpoint',
    '',
    'A load generator in its own process on loopback: keep-alive connections, each sending its next GET as soon as the last',
    `answer is read${load ? ` (${load.connections} connections, ${num(load.warmupMs / 1000, 1)} s warm-up, ${num(load.durationMs / 1000, 1)} s measured)` : ''}. First a real`,
    'agent\'s container-credentials endpoint (one local worker, endpoint delivery; the token file re-read on every request, as',
    'the spec requires), then moto\'s instance-metadata credentials (IMDSv1 GET), which stand in for an instance profile.',
    `Target: over ${num(TARGETS.endpointRps)} requests a second and p99 under ${TARGETS.endpointP99Ms} ms; during a flood of`,
    `wrong-token requests on the other connections (answered 401 up to the refusal limit, then 429), the right token's`,
    `p99 stays under ${TARGETS.floodP99Ms} ms.`,
    '',
    table(['server', 'requests/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'result'], rows),
    failures(outcomes),
  ].join('\n');
}

function launchSection(outcomes: Outcome<LaunchResult>[]): string {
  const rows = values(outcomes).map((r) => [num(r.workers), num(r.firstReadySeconds, 2), num(r.allReadySeconds, 2)]);
  return [
    '## Launch',
    '',
    '`launchCluster({ workers: N })` in role mode against moto, from the call to the first worker and to every worker holding',
    'credentials: coordinator start (a fresh self-signed certificate), one AssumeRole, N `credfwd-agent` processes starting',
    '(each a Node process running the one-file agent), their handshakes and first pushes.',
    '',
    table(['workers', 'first worker ready, s', 'all workers ready, s'], rows),
    failures(outcomes),
  ].join('\n');
}

function footprintSection(footprint: Outcome<AgentFootprintResult>[], launchFloor: Outcome<LaunchFloorResult>[]): string {
  const idleRows = values(footprint).flatMap((r) => r.idle.map((i) => {
    const over = (i.agentBytes - i.bareBytes) / MiB;
    return [i.nodeVersion, num(i.bareBytes / MiB, 1), num(i.agentBytes / MiB, 1), num(over, 1), `${num(i.agentBytes / i.bareBytes, 2)}×`, `≤ +${TARGETS.agentOverBareMiB} MiB`, verdict(over <= TARGETS.agentOverBareMiB),
      num(i.tlsClientBytes / MiB, 1), num((i.agentBytes - i.tlsClientBytes) / MiB, 1), num(i.nodePartsBytes / MiB, 1), num((i.agentBytes - i.nodePartsBytes) / MiB, 1)];
  }));
  const launchRows = values(launchFloor).map((r) => {
    const ratio = r.clusterReadySeconds / r.bareNodeSeconds;
    return [num(r.workers), num(r.rounds), num(r.bareNodeSeconds, 2), num(r.clusterReadySeconds, 2), `${num(ratio, 1)}×`, `≤ ${TARGETS.launchOverBareRatio}×`, verdict(ratio <= TARGETS.launchOverBareRatio)];
  });
  const bundle = values(footprint)[0];
  return [
    '## Agent footprint and launch, against floors from the same run',
    '',
    'Each figure beside its floor, measured in the same run on the same machine, so that a slower or busier machine moves',
    'both sides together. **Idle RSS**: three one-file agents (`node credfwd-agent.mjs join`, what `credfwd agent-bundle`',
    'writes and local workers run) joined to a role cluster on moto and holding their credentials, beside three idle bare',
    '`node` started at the same moment by the same binary; all read (VmRSS)',
    `${num(FOOTPRINT_IDLE_MS / 1000)} s after the last agent acknowledged its credentials, once V8's memory reducer has made its last`,
    'collection, and each side is the median of its three. The distribution\'s Node 20 is measured too when it is installed,',
    'as older worker images carry it, side by side with this one. Two more floors, started with the agent\'s Node options,',
    'show where the difference lies: a `node` that only holds one idle TLS connection as the agent holds its own (to a server',
    'with the coordinator\'s kind of certificate, trusting only that certificate), what any agent of a TLS coordinator costs',
    'before its own code; and the parts of Node the agent uses, without the agent: the same connection held by an ES module',
    '(as the one file is) that also loads `https` (ws\'s client) and serves HTTP on loopback (the credentials endpoint). **Launch**:',
    '`launchCluster({ workers: N, credentials: null })` to every local worker joined, beside N bare `node -e 0` started at',
    'once until the last has exited; the two alternate, and each is the median of its rounds.',
    '',
    table(['node', 'bare node idle RSS, MiB', 'agent idle RSS, MiB', 'difference, MiB', 'ratio', 'target', 'result', 'node holding one TLS connection, MiB', 'agent over it, MiB', 'the parts of Node the agent uses, MiB', 'agent over them, MiB'], idleRows),
    '',
    table(['workers', 'rounds', `N bare \`node -e 0\` at once, s`, 'N local workers ready, s', 'ratio', 'target', 'result'], launchRows),
    ...(bundle ? ['', `The one-file agent is **${num(bundle.bundleBytes / KiB)} KiB** (${num(bundle.bundleGzipBytes / KiB)} KiB gzipped): every dependency included, nothing else to install on a worker.`] : []),
    failures(footprint),
    failures(launchFloor),
  ].join('\n');
}

function hotSection(outcomes: Outcome<FanoutResult>[]): string {
  const profiled = values(outcomes).filter((r) => r.hot);
  if (profiled.length === 0) return '';
  return profiled.map((r) => [
    `### Where a refresh of ${num(r.connected)} agents spends the coordinator's CPU`,
    '',
    `Self time during one extra profiled refresh (inspector CPU profiler, the same format as \`node --cpu-prof\`; idle`,
    `left out), summed per function. The profile is written to \`${r.profilePath ?? ''}\` for Chrome DevTools or speedscope.`,
    '',
    table(['function', 'where', 'self %'], (r.hot ?? []).map((h) => [`\`${h.name}\``, h.where ? `\`${h.where}\`` : '', num(h.selfPercent, 1)])),
  ].join('\n')).join('\n\n');
}

/** Renders BENCHMARKS.md. `analysis` is the hand-written "what bounds it" text. */
export function renderReport(results: Results, analysis: string): string {
  const m = results.machine;
  return [
    '# credfwd benchmarks',
    '',
    'Generated by `bench/run.ts`; do not edit by hand. Benchmarks are not tests: nothing in `pnpm test` asserts a time.',
    '',
    `- Command: \`${results.command}\``,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${num(m.memoryGiB, 1)} GiB RAM; Linux ${m.kernel}; Node ${m.node}`,
    `- Run: ${m.date}, ${num(results.totalSeconds)} s in all; 1-minute load average at the start ${num(m.loadAtStart, 2)}`,
    ...results.notices.map((n) => `- **Note:** ${n}`),
    '',
    fanoutSection(results.fanout),
    '',
    replicaFanoutSection(results.replicaFanout, results.fanout),
    '',
    memorySection(results.fanout, results.memoryFloor),
    '',
    coordinatorFloorsSection(values(results.coordinatorFloors)),
    failures(results.coordinatorFloors),
    '',
    stsSection(results.sts),
    '',
    endpointSection(results.endpoint),
    '',
    ...values(results.imds).map(imdsEndpointSection),
    failures(results.imds),
    '',
    launchSection(results.launch),
    '',
    footprintSection(results.agentFootprint, results.launchFloor),
    '',
    ...values(results.sshLaunch).map((r) => r.markdown),
    failures(results.sshLaunch),
    '',
    '## What bounds it',
    '',
    analysis,
    '',
    hotSection(results.fanout),
    '',
  ].join('\n').replace(/\n{3,}/g, '\n\n');
}
