import { EventEmitter } from 'node:events';
import { CredfwdError, createLogger, type Logger } from '@credfwd/shared';
import type { RunOptions } from './agent-hub.ts';
import { Coordinator, planCluster, type ClusterOptions, type ClusterRecord, type ClusterStatus } from './coordinator.ts';
import { launchAborted, unlessAborted } from './launch-abort.ts';
import { LocalAgents } from './local-backend.ts';
import type { RefreshError } from './refresh-scheduler.ts';
import type { WorkerResult } from './task-dispatch.ts';

export interface LaunchOptions extends ClusterOptions {
  /** Local worker agents to start (0 for agents that join from elsewhere). */
  workers: number;
  logger?: Logger;
  /** `HOST:PORT` to listen on for agents; 127.0.0.1 on a free port by default. */
  listen?: string;
  /** `HOST:PORT` remote agents should dial, if not the listen address. */
  publicAddress?: string;
  /** Called as local workers come up, for progress displays. */
  onProgress?: (ready: number, total: number) => void;
  /** How long local workers have to hold credentials. */
  readyTimeoutMs?: number;
  /** Extra environment for local agents: stands in for a worker's own platform variables. */
  workerEnv?: Record<string, string>;
  /** Echo local agents' logs to stderr. */
  echoAgentLogs?: boolean;
  heartbeatIntervalMs?: number;
  /**
   * Aborts the launch: waiting for workers (or for STS) stops at once,
   * whatever started is stopped, and the promise rejects with ABORTED.
   * No effect once the cluster is up: close it instead.
   */
  signal?: AbortSignal;
}

/** Events of one cluster. */
export type ClusterEvents = {
  /** An agent acknowledged the credentials with this seq (0 in null mode: it joined). */
  'agent-ready': [agentId: string, seq: number];
  /** New credentials (seq) were minted and pushed. */
  refreshed: [seq: number, expiresAt: Date];
  /** A refresh failed; the current credentials stay in use until they expire. */
  'refresh-failed': [error: RefreshError];
};

/** A running cluster: its workers act with the identity chosen at launch. */
export interface Cluster extends EventEmitter<ClusterEvents> {
  id: string;
  /** Local worker ids. */
  workers: string[];
  /** A secret (it holds the join token): give it to remote agents via CREDFWD_JOIN or a file. */
  joinString: string;
  /** A shell command that joins an agent on another machine, join string included. */
  joinCommand: string;
  /** When the forwarded credentials expire, or null in null mode. */
  expiresAt: Date | null;
  /** Agents connected now and the state of the credentials' refresh. */
  status(): ClusterStatus;
  /**
   * Mints and pushes new credentials now; how to resume refreshing after a
   * failure that needed a person (`status().refresh.state === 'needs-attention'`).
   * Rejects with the STS error when it fails again. Null mode: nothing to do.
   */
  refresh(): Promise<void>;
  /** Runs argv on every worker; one result per worker, never rejecting on a worker's failure. */
  run(argv: string[], options?: RunOptions): Promise<WorkerResult[]>;
  /** Revokes the cluster and stops its agents and their workloads. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_READY_TIMEOUT_MS = 60_000;

function checkWorkers(workers: number): void {
  if (!Number.isInteger(workers) || workers < 0 || workers > 1000) {
    throw new CredfwdError('CONFIG_INVALID', `workers must be a whole number from 0 to 1000, not ${workers}`, 'local workers are processes on this machine; start remote agents with the join command for more');
  }
}

function waitForWorkers(coordinator: Coordinator, record: ClusterRecord, agents: LocalAgents, options: LaunchOptions): Promise<void> {
  const total = agents.ids.length;
  const expected = new Set(agents.ids);
  const ready = new Set(coordinator.hub.readyAgents(record.id).filter((id) => expected.has(id)));
  options.onProgress?.(ready.size, total);
  if (ready.size === total) return Promise.resolve();
  const { signal } = options;
  return new Promise((resolve, reject) => {
    const finish = (error?: CredfwdError): void => {
      clearTimeout(timer);
      coordinator.hub.off('agent-ready', onReady);
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onReady = (clusterId: string, agentId: string): void => {
      if (clusterId !== record.id || !expected.has(agentId) || ready.has(agentId)) return;
      ready.add(agentId);
      options.onProgress?.(ready.size, total);
      if (ready.size === total) finish();
    };
    const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const timer = setTimeout(() => finish(new CredfwdError(
      'AGENT_START_FAILED',
      `only ${ready.size} of ${total} workers were ready after ${Math.round(timeoutMs / 1000)} s`,
      'run with CREDFWD_LOG_LEVEL=debug to see the agent logs',
    )), timeoutMs);
    const onAbort = (): void => finish(launchAborted(signal!));
    coordinator.hub.on('agent-ready', onReady);
    agents.onUnexpectedExit((error) => finish(error));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Launches a cluster on the embedded coordinator: validates, mints once,
 * starts local agents and resolves when every one holds its credentials.
 */
export async function launchCluster(options: LaunchOptions): Promise<Cluster> {
  checkWorkers(options.workers);
  planCluster(options);
  const { signal } = options;
  if (signal?.aborted) throw launchAborted(signal);
  const logger = options.logger ?? createLogger({ name: 'credfwd' });
  const coordinator = await Coordinator.start({
    logger,
    ...(options.listen ? { listen: options.listen } : {}),
    ...(options.publicAddress ? { publicAddress: options.publicAddress } : {}),
    ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
  });
  let record: ClusterRecord;
  try {
    // The STS call may take its time; an abort does not wait for it, and a cluster it creates late is closed at once.
    record = await unlessAborted(coordinator.createCluster(options), signal, (late) => coordinator.closeCluster(late.id));
  } catch (err) {
    await coordinator.close();
    throw err;
  }
  const agents = LocalAgents.start({
    count: options.workers,
    clusterId: record.id,
    joinString: record.joinString,
    logger,
    ...(options.workerEnv ? { workerEnv: options.workerEnv } : {}),
    ...(options.echoAgentLogs ? { echoLogs: true } : {}),
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      coordinator.closeCluster(record.id);
      await agents.stop();
      await coordinator.close();
    })();
    return closing;
  };
  try {
    await waitForWorkers(coordinator, record, agents, options);
  } catch (err) {
    // Agents still starting never hear of the revocation and would retry a closed coordinator: signal them now.
    if (signal?.aborted) agents.terminate();
    await close();
    throw err;
  }
  agents.onUnexpectedExit((error) => logger.error({ code: error.code, reason: error.message }, 'worker lost'));
  const events = new EventEmitter<ClusterEvents>();
  coordinator.hub.on('agent-ready', (clusterId, agentId, seq) => clusterId === record.id && events.emit('agent-ready', agentId, seq));
  coordinator.on('refreshed', (clusterId, seq, expiresAt) => clusterId === record.id && events.emit('refreshed', seq, expiresAt));
  coordinator.on('refresh-failed', (clusterId, error) => clusterId === record.id && events.emit('refresh-failed', error));
  return Object.assign(events, {
    id: record.id,
    workers: agents.ids,
    joinString: record.joinString,
    joinCommand: `CREDFWD_JOIN=${shellQuote(record.joinString)} credfwd-agent join`,
    expiresAt: record.minted?.expiresAt ?? null,
    status: () => coordinator.status(record.id),
    refresh: () => coordinator.refresh(record.id),
    run: (argv: string[], runOptions?: RunOptions) => coordinator.run(record.id, argv, runOptions),
    close,
  });
}
