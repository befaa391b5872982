/**
 * One replica of a distributed coordinator service (the `Replica` API that
 * `credfwd serve` runs), in a process of its own, noting when each agent's
 * ack of each credentials seq arrives. Driven by bench/fanout-replicas.ts
 * over IPC; its secrets arrive over IPC, never argv or the environment.
 */
import { Replica } from '@credfwd/coordinator/service';
import { createLogger } from '@credfwd/shared';
import { BENCH_ADMISSION_LIMITS } from './lib/admission.ts';
import { machineMs } from './lib/clock.ts';
import { serve } from './lib/worker-side.ts';

/** What a replica needs to join the service: where Redis is, and the service's secrets. */
export interface ReplicaStartParams {
  redisUrl: string;
  redisPrefix: string;
  /** Secrets: the state key (base64url) and the admin token. */
  stateKey: string;
  adminToken: string;
}

/** The started replica, as the admin client needs it. */
export interface ReplicaStartAnswer {
  /** `https://127.0.0.1:PORT` of its admin API. */
  url: string;
  /** Hex SHA-256 of the service certificate. */
  pin: string;
}

/** Acks seen per credentials seq: how many so far. */
export type AckCounts = Record<number, number>;

/** When each ack of the asked seqs arrived ({@link machineMs}), per seq. */
export type AckTimes = Record<number, number[]>;

let replica: Replica | undefined;
const acks = new Map<number, number[]>();

async function start(params: ReplicaStartParams): Promise<ReplicaStartAnswer> {
  const logger = createLogger({ name: 'bench-replica', level: 'warn' });
  const started = await Replica.start({
    logger,
    listen: '127.0.0.1:0',
    redisUrl: params.redisUrl,
    redisPrefix: params.redisPrefix,
    secrets: { stateKey: Buffer.from(params.stateKey, 'base64url'), adminToken: params.adminToken },
    limits: BENCH_ADMISSION_LIMITS,
  });
  replica = started;
  started.hub.on('agent-ready', (_cluster, _agent, seq) => {
    const at = machineMs();
    let times = acks.get(seq);
    if (!times) acks.set(seq, (times = []));
    times.push(at);
  });
  return { url: `https://${started.address}`, pin: started.pin };
}

serve({
  start: (params) => start(params as ReplicaStartParams),
  readyCount: (clusterId) => replica?.hub.readyAgents(clusterId as string).length ?? 0,
  ackCounts: (): AckCounts => Object.fromEntries([...acks].map(([seq, times]) => [seq, times.length])),
  ackTimes: (seqs): AckTimes => Object.fromEntries((seqs as number[]).map((seq) => [seq, acks.get(seq) ?? []])),
  stop: async () => {
    await replica?.close();
    setImmediate(() => process.exit(0));
  },
});
