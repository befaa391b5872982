import { fileURLToPath } from 'node:url';
import type { MeasureAnswer, MeasureParams, MemoryAnswer, StartAnswer, StartParams } from '../coordinator-host.ts';
import type { StatusAnswer } from '../sim-agents.ts';
import { spawnWorker } from './children.ts';
import { withDeadline } from './deadline.ts';
import { startSimFleet, type SimFleet } from './sim-fleet.ts';

const HOST = fileURLToPath(new URL('../coordinator-host.ts', import.meta.url));

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
  let fleet: SimFleet | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Simulators first, so the coordinator is not busy with their goodbyes while it stops.
      await fleet?.close();
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
    const sims = await startSimFleet({ joinString, agents: options.agents, connectTimeoutMs: options.connectTimeoutMs, ...(options.env ? { env: options.env } : {}) });
    fleet = sims;
    return {
      agents: sims.connected,
      connectMs: sims.connectMs,
      failed: sims.failed,
      reasons: sims.reasons,
      measure: (params) => host.call<MeasureAnswer>('measure', params),
      memory: () => host.call<MemoryAnswer>('memory'),
      readyCount: () => host.call<number>('readyCount'),
      simStatus: () => sims.status(),
      joinString,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
