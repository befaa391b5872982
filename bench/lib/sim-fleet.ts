import { fileURLToPath } from 'node:url';
import type { ConnectAnswer, StatusAnswer } from '../sim-agents.ts';
import { spawnWorker, type Worker } from './children.ts';
import { withDeadline } from './deadline.ts';

const SIMS = fileURLToPath(new URL('../sim-agents.ts', import.meta.url));

/** Sockets one simulator process holds at most: a single process cannot drive 10,000 on its own. */
export const AGENTS_PER_SIM_PROCESS = 2_500;
/** Handshakes each simulator process keeps in flight while connecting. */
const CONNECT_CONCURRENCY = 32;

/** Simulator processes whose agents have joined one cluster, from {@link startSimFleet}. */
export interface SimFleet {
  /** Agents that hold credentials. */
  connected: number;
  failed: number;
  /** A few distinct reasons for failed connection attempts. */
  reasons: string[];
  /** Time to connect every agent and have each hold its first credentials, ms. */
  connectMs: number;
  /** The simulator processes, for their CPU time. */
  pids: number[];
  status(): Promise<StatusAnswer[]>;
  /** Asks every simulator to exit, then makes sure it has. Idempotent. */
  close(): Promise<void>;
}

export interface SimFleetOptions {
  /** A secret: sent to the simulators over IPC only. */
  joinString: string;
  agents: number;
  env?: NodeJS.ProcessEnv;
  connectTimeoutMs: number;
}

/**
 * Starts enough simulator processes for `agents` and resolves once every
 * simulated agent holds credentials (or gave up after its retries). On
 * failure, every simulator it started is stopped.
 */
export async function startSimFleet(options: SimFleetOptions): Promise<SimFleet> {
  const sims: Worker[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= Promise.all(sims.map(async (sim) => {
      await sim.call('exit').catch(() => undefined);
      await sim.stop();
    })).then(() => undefined);
    return closing;
  };
  try {
    const processes = Math.max(1, Math.ceil(options.agents / AGENTS_PER_SIM_PROCESS));
    const started = performance.now();
    const answers = await withDeadline(Promise.all(Array.from({ length: processes }, (_, i) => {
      const sim = spawnWorker(SIMS, options.env ? { env: options.env } : {});
      sims.push(sim);
      const count = Math.floor(options.agents / processes) + (i < options.agents % processes ? 1 : 0);
      return sim.call<ConnectAnswer>('connect', { joinString: options.joinString, idPrefix: `sim${i}`, count, concurrency: CONNECT_CONCURRENCY });
    })), options.connectTimeoutMs, `connecting ${options.agents} simulated agents`);
    return {
      connected: answers.reduce((sum, a) => sum + a.connected, 0),
      failed: answers.reduce((sum, a) => sum + a.failed, 0),
      reasons: [...new Set(answers.flatMap((a) => a.reasons))],
      connectMs: performance.now() - started,
      pids: sims.flatMap((sim) => (sim.child.pid === undefined ? [] : [sim.child.pid])),
      status: () => Promise.all(sims.map((sim) => sim.call<StatusAnswer>('status'))),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
