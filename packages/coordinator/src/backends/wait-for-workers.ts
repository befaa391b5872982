import { CredfwdError } from '@credfwd/shared';
import { launchAborted } from '../core/index.ts';
import type { LaunchedAgents } from './launch-backend.ts';

/**
 * How a launcher learns which of its workers hold their cluster's current
 * credentials (or have joined, in null mode): hub events in the embedded
 * coordinator, polling a service's admin API.
 */
export interface WorkerReadiness {
  /**
   * Reports which of `expected` are ready, at once and whenever that may
   * have changed, until the returned function is called; `fail` ends the wait.
   */
  watch(expected: ReadonlySet<string>, report: (ready: ReadonlySet<string>) => void, fail: (error: unknown) => void): () => void;
}

/** How far a launch is: workers, and the hosts all of whose workers are ready. */
export interface LaunchProgress {
  ready: number;
  total: number;
  hosts: { ready: number; total: number };
}

export interface WaitOptions {
  readiness: WorkerReadiness;
  /** How long started workers have to be ready. */
  readyTimeoutMs?: number;
  onProgress?: (ready: number, total: number, progress: LaunchProgress) => void;
}

const DEFAULT_READY_TIMEOUT_MS = 60_000;

/**
 * Waits until every agent a backend started is ready. Rejects with
 * AGENT_START_FAILED when one dies or time runs out, or with ABORTED when
 * `signal` aborts; then agents are signalled at once, since those still
 * starting would never hear of their cluster's end. The caller closes the
 * cluster and stops the agents.
 */
export async function waitForWorkers(agents: LaunchedAgents, signal: AbortSignal | undefined, options: WaitOptions): Promise<void> {
  try {
    await untilReady(agents, signal, options);
  } catch (err) {
    if (signal?.aborted) agents.terminate();
    throw err;
  }
}

function untilReady(agents: LaunchedAgents, signal: AbortSignal | undefined, options: WaitOptions): Promise<void> {
  const expected = new Set(agents.workers.map((w) => w.agentId));
  const total = expected.size;
  const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let ready = 0;
    let done = false;
    let stopWatching = (): void => undefined;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopWatching();
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish(launchAborted(signal!));
    const timer = setTimeout(() => finish(new CredfwdError(
      'AGENT_START_FAILED',
      `only ${ready} of ${total} workers were ready after ${Math.round(timeoutMs / 1000)} s`,
      'run with CREDFWD_LOG_LEVEL=debug to see the agent logs',
    )), timeoutMs);
    agents.onUnexpectedExit((error) => finish(error));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const stop = options.readiness.watch(expected, (readyIds) => {
      ready = readyIds.size;
      options.onProgress?.(ready, total, { ready, total, hosts: hostsReady(agents, readyIds) });
      if (ready === total) finish();
    }, finish);
    // Everything may have been ready, or failed, before watch returned.
    if (done) stop();
    else stopWatching = stop;
  });
}

function hostsReady(agents: LaunchedAgents, readyIds: ReadonlySet<string>): { ready: number; total: number } {
  const waiting = new Set<string>();
  const all = new Set<string>();
  for (const { agentId, host } of agents.workers) {
    all.add(host);
    if (!readyIds.has(agentId)) waiting.add(host);
  }
  return { ready: all.size - waiting.size, total: all.size };
}
