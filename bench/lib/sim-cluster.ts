import { fileURLToPath } from 'node:url';
import type { MeasureAnswer, MeasureParams, MemoryAnswer, StartAnswer, StartParams } from '../coordinator-host.ts';
import type { ConnectAnswer, StatusAnswer } from '../sim-agents.ts';
import { spawnWorker, type Worker } from './children.ts';
import { withDeadline } from './deadline.ts';

const HOST = fileURLToPath(new URL('../coordinator-host.ts', import.meta.url));
const SIMS = fileURLToPath(new URL('../sim-agents.ts', import.meta.url));

/** Sockets one simulator process holds at most: a single process cannot drive 10,000 on its own. */
export const AGENTS_PER_SIM_PROCESS = 2_500;
/** Handshakes each simulator process keeps in flight while connecting. */
const CONNECT_CONCURRENCY = 32;

/** A coordinator process with one cluster, and the simulator processes joined to it. */
export interface SimCluster {
  agents: number;
  /** Time to connect every simulated agent and have each hold its first credentials, ms. */
  connectMs: number;
  failed: number;
  reasons: string[];
  measure(params: MeasureParams): Promise<MeasureAnswer>;
  memory(): Promise<MemoryAnswer>;
  readyCount(): Promise<number>;
  simStatus(): Promise<StatusAnswer[]>;
  /** A secret: for a real agent's CREDFWD_JOIN only. */
  joinString: string;
  /** Stops every simulator and the coordinator. Idempotent. */
  close(): Promise<void>;
}

export interface SimClusterOptions extends StartParams {
  agents: number;
  env?: NodeJS.ProcessEnv;
  /** Called with the coordinator before any agent connects: the memory baseline. */
  beforeAgents?: (host: { memory(): Promise<MemoryAnswer> }) => Promise<void>;
  connectTimeoutMs: number;
}

/**
 * Starts a coordinator process and enough simulator processes for
 * `agents`, and resolves once every simulated agent holds credentials.
 * On failure everything it started is stopped.
 */
export async function startSimCluster(options: SimClusterOptions): Promise<SimCluster> {
  const host = spawnWorker(HOST, { execArgv: ['--expose-gc'], ...(options.env ? { env: options.env } : {}) });
  const sims: Worker[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Simulators first, so the coordinator is not busy with their goodbyes while it stops.
      await Promise.all(sims.map(async (sim) => {
        await sim.call('exit').catch(() => undefined);
        await sim.stop();
      }));
      await host.call('stop').catch(() => undefined);
      await host.stop();
    })();
    return closing;
  };
  try {
    const { joinString } = await withDeadline(host.call<StartAnswer>('start', {
      credentials: options.credentials,
      refreshIntervalSeconds: options.refreshIntervalSeconds,
    }), 30_000, 'coordinator start');
    await options.beforeAgents?.({ memory: () => host.call<MemoryAnswer>('memory') });
    const processes = Math.max(1, Math.ceil(options.agents / AGENTS_PER_SIM_PROCESS));
    const started = performance.now();
    const answers = await withDeadline(Promise.all(Array.from({ length: processes }, (_, i) => {
      const sim = spawnWorker(SIMS, options.env ? { env: options.env } : {});
      sims.push(sim);
      const count = Math.floor(options.agents / processes) + (i < options.agents % processes ? 1 : 0);
      return sim.call<ConnectAnswer>('connect', { joinString, idPrefix: `sim${i}`, count, concurrency: CONNECT_CONCURRENCY });
    })), options.connectTimeoutMs, `connecting ${options.agents} simulated agents`);
    const connectMs = performance.now() - started;
    return {
      agents: answers.reduce((sum, a) => sum + a.connected, 0),
      connectMs,
      failed: answers.reduce((sum, a) => sum + a.failed, 0),
      reasons: [...new Set(answers.flatMap((a) => a.reasons))],
      measure: (params) => host.call<MeasureAnswer>('measure', params),
      memory: () => host.call<MemoryAnswer>('memory'),
      readyCount: () => host.call<number>('readyCount'),
      simStatus: () => Promise.all(sims.map((sim) => sim.call<StatusAnswer>('status'))),
      joinString,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
