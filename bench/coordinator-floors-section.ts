import type { CoordinatorFloorsResult } from './coordinator-floors.ts';
import { num, table, verdict } from './lib/markdown.ts';

/** Targets from issue 12, item 5. */
export const COORDINATOR_TARGETS = {
  /** Coordinator RSS per agent over a bare node:tls server's per connection, KiB. */
  perAgentOverTlsKiB: 8,
  /** Coordinator CPU per agent per refresh against one seal and one TLS write per socket. */
  refreshCpuOverFloorRatio: 2,
} as const;

const KiB = 1024;

/** A difference with its sign, whichever it is. */
function signed(value: number, unit: string): string {
  return `${value >= 0 ? '+' : ''}${num(value, 1)} ${unit}`;
}

/** The "Coordinator against floors from the same run" section of BENCHMARKS.md. */
export function coordinatorFloorsSection(results: CoordinatorFloorsResult[]): string {
  if (results.length === 0) return '';
  const rows = results.flatMap((r) => {
    const overKiB = (r.perAgentBytes - r.tlsPerConnectionBytes) / KiB;
    const cpuRatio = r.cpuPerAgentUs / r.floorCpuPerAgentUs;
    const pushRatio = r.pushCpuPerAgentUs / r.floorCpuPerAgentUs;
    const joinedOverKiB = (r.joinedPerAgentBytes - r.tlsJoinedPerConnectionBytes) / KiB;
    return [
      [num(r.connected), 'RSS per agent once joined, KiB', num(r.joinedPerAgentBytes / KiB, 1), `${num(r.tlsJoinedPerConnectionBytes / KiB, 1)}: a bare \`node:tls\` server per connection`,
        signed(joinedOverKiB, 'KiB'), `${num(r.joinedPerAgentBytes / r.tlsJoinedPerConnectionBytes, 2)}×`, `≤ +${COORDINATOR_TARGETS.perAgentOverTlsKiB} KiB`, verdict(joinedOverKiB <= COORDINATOR_TARGETS.perAgentOverTlsKiB)],
      [num(r.connected), 'RSS per agent after the refreshes, KiB', `${num(r.perAgentBytes / KiB, 1)} (JS heap ${num(r.perAgentHeapBytes / KiB, 1)})`, `${num(r.tlsPerConnectionBytes / KiB, 1)}: the same after its pushes`,
        signed(overKiB, 'KiB'), `${num(r.perAgentBytes / r.tlsPerConnectionBytes, 2)}×`, '—', '—'],
      [num(r.connected), 'CPU per agent per refresh, mint to last ack, µs', num(r.cpuPerAgentUs, 1), `${num(r.floorCpuPerAgentUs, 1)}: one seal and one TLS write per socket`,
        signed(r.cpuPerAgentUs - r.floorCpuPerAgentUs, 'µs'), `${num(cpuRatio, 2)}×`, `≤ ${COORDINATOR_TARGETS.refreshCpuOverFloorRatio}×`, verdict(cpuRatio <= COORDINATOR_TARGETS.refreshCpuOverFloorRatio)],
      [num(r.connected), 'the same, mint to every push written, µs', num(r.pushCpuPerAgentUs, 1), 'the same', signed(r.pushCpuPerAgentUs - r.floorCpuPerAgentUs, 'µs'), `${num(pushRatio, 2)}×`, '—', '—'],
    ];
  });
  return [
    '## Coordinator against floors from the same run',
    '',
    'Per connected agent, the coordinator beside a bare `node:tls` server (the same kind of P-256 self-signed certificate, no',
    'websocket, no credfwd) measured in the same run with as many connections from a client process. **Memory**: coordinator',
    'RSS after collecting all the garbage V8 can (the last-resort collection, which also gives back the young generation\'s',
    'pages, as V8 does by itself once a process idles: a burst of 2,000 joins leaves about 10 MiB of them in use), less its',
    'RSS before any agent, divided by the agents: once every simulated agent has',
    'joined and holds its first credentials (the cluster\'s schedule is longer than the run, so no refresh races the joining),',
    'and again after the timed refreshes. The floor is read the same way: once every connection has echoed one push-sized',
    'message, and again after its own pushes (below). The target is judged once joined: after pushes, both sides also hold',
    'memory their allocator kept from the bursts of writes, which depends on how the writes are bunched (the floor writes to',
    'every connection at once, the coordinator in batches of 256). **CPU**: the coordinator\'s CPU time (user + system) for one',
    'refresh of a forward-mode cluster (so the mint is a function call; each refresh started once the last is acknowledged), divided by the',
    'agents, the median of the rounds after two untimed ones. From the mint to the last ack is the whole refresh, the acks included; from the mint to',
    'the last push written leaves most acks out. The floor is the least a refresh must do: for each connection one AES-256-GCM',
    'seal of the same credentials into a compact JWE (the key imported once per connection) and one TLS write of the',
    'websocket frame carrying it, timed until every write has completed, the median of as many rounds after two untimed ones.',
    '',
    table(['agents', 'measure', 'coordinator', 'floor', 'difference', 'ratio', 'target', 'result'], rows),
  ].join('\n');
}
