import { EventEmitter } from 'node:events';
import { createLogger, isCredfwdError, type Logger } from '@credfwd/shared';
import { launchBackendFor, waitForWorkers, type LaunchedAgents, type LaunchProgress, type WorkerPlacementOptions, type WorkerReadiness } from '../backends/index.ts';
import { launchAborted, localUserName, planCluster, unlessAborted, withHosts, type AuditEntry, type AuditLog, type ClusterHandle, type ClusterOptions, type RefreshError, type RunOptions } from '../core/index.ts';
import { Coordinator, type ClusterRecord, type ClusterStatus } from './coordinator.ts';

export interface LaunchOptions extends ClusterOptions, WorkerPlacementOptions {
  logger?: Logger;
  /** `HOST:PORT` to listen on for agents; 127.0.0.1 on a free port by default. */
  listen?: string;
  /** `HOST:PORT` remote agents should dial, if not the listen address. */
  publicAddress?: string;
  /**
   * Agents on SSH hosts dial the join string's address (the listen or public
   * address) instead of a reverse tunnel of their SSH connection.
   */
  direct?: boolean;
  /** Called as started workers come up, for progress displays. */
  onProgress?: (ready: number, total: number, progress: LaunchProgress) => void;
  /** How long started workers have to hold credentials. */
  readyTimeoutMs?: number;
  /** Extra environment for started agents: stands in for a worker's own platform variables. */
  workerEnv?: Record<string, string>;
  /** Echo started agents' logs to stderr. */
  echoAgentLogs?: boolean;
  heartbeatIntervalMs?: number;
  /**
   * Aborts the launch: waiting for workers (or for STS) stops at once,
   * whatever started is stopped, and the promise rejects with ABORTED.
   * No effect once the cluster is up: close it instead.
   */
  signal?: AbortSignal;
  /** Where the launch writes its audit lines (create, run, refresh, delete), as a service does. */
  audit?: AuditLog;
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
export interface Cluster extends EventEmitter<ClusterEvents>, ClusterHandle<RunOptions> {
  /** A shell command that joins an agent on another machine, join string included. */
  joinCommand: string;
  /** Agents connected now and the state of the credentials' refresh. */
  status(): ClusterStatus;
  /**
   * Mints and pushes new credentials now; how to resume refreshing after a
   * failure that needed a person (`status().refresh.state === 'needs-attention'`).
   * Rejects with the STS error when it fails again. Null mode: nothing to do.
   */
  refresh(): Promise<void>;
}

/** Workers are ready as the hub says so: it holds their connections. */
function hubReadiness(coordinator: Coordinator, clusterId: string): WorkerReadiness {
  return {
    watch(expected, report) {
      const ready = new Set(coordinator.hub.readyAgents(clusterId).filter((id) => expected.has(id)));
      const onReady = (readyClusterId: string, agentId: string): void => {
        if (readyClusterId !== clusterId || !expected.has(agentId) || ready.has(agentId)) return;
        ready.add(agentId);
        report(ready);
      };
      coordinator.hub.on('agent-ready', onReady);
      report(ready);
      return () => coordinator.hub.off('agent-ready', onReady);
    },
  };
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Launches a cluster on the embedded coordinator: validates, mints once,
 * starts agents through the backend and resolves when every one holds its
 * credentials.
 */
export async function launchCluster(options: LaunchOptions): Promise<Cluster> {
  const plan = planCluster(options);
  const backend = launchBackendFor(options, plan.delivery);
  // The launcher is the principal of an embedded cluster: the local user unless told, as sudo and auditd name them.
  const audited = (entry: Pick<AuditEntry, 'action' | 'outcome' | 'code' | 'reason'>, cluster: string | null): void => options.audit?.record({
    ...entry, principal: options.principal ?? localUserName(), cluster, mode: plan.spec.kind, roleArn: plan.spec.kind === 'role' ? plan.spec.roleArn : null,
  });
  const failed = (err: unknown): Pick<AuditEntry, 'outcome' | 'code' | 'reason'> => ({ outcome: 'failed', code: isCredfwdError(err) ? err.code : 'INTERNAL', reason: isCredfwdError(err) ? err.message : 'internal error' });
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
    audited({ action: 'create', ...failed(err) }, null);
    await coordinator.close();
    throw err;
  }
  audited({ action: 'create', outcome: 'ok' }, record.id);
  let agents: LaunchedAgents;
  try {
    agents = await backend.start({
      clusterId: record.id,
      joinString: record.joinString,
      coordinatorAddress: coordinator.localAddress,
      direct: options.direct === true || options.publicAddress !== undefined,
      logger,
      ...(signal ? { signal } : {}),
      ...(options.workerEnv ? { workerEnv: options.workerEnv } : {}),
      ...(options.echoAgentLogs ? { echoLogs: true } : {}),
    });
  } catch (err) {
    await coordinator.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      coordinator.closeCluster(record.id);
      audited({ action: 'delete', outcome: 'ok' }, record.id);
      await agents.stop();
      await coordinator.close();
    })();
    return closing;
  };
  try {
    await waitForWorkers(agents, signal, {
      readiness: hubReadiness(coordinator, record.id),
      ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (err) {
    await close();
    throw err;
  }
  agents.onUnexpectedExit((error) => logger.error({ code: error.code, reason: error.message }, 'worker lost'));
  const events = new EventEmitter<ClusterEvents>();
  coordinator.hub.on('agent-ready', (clusterId, agentId, seq) => clusterId === record.id && events.emit('agent-ready', agentId, seq));
  coordinator.on('refreshed', (clusterId, seq, expiresAt) => {
    if (clusterId !== record.id) return;
    audited({ action: 'refresh', outcome: 'ok' }, record.id);
    events.emit('refreshed', seq, expiresAt);
  });
  coordinator.on('refresh-failed', (clusterId, error) => {
    if (clusterId !== record.id) return;
    audited({ action: 'refresh', outcome: 'failed', code: error.code, reason: error.message }, record.id);
    events.emit('refresh-failed', error);
  });
  return Object.assign(events, {
    id: record.id,
    workers: agents.workers.map((w) => w.agentId),
    hosts: [...new Set(agents.workers.map((w) => w.host))],
    joinString: record.joinString,
    joinCommand: `CREDFWD_JOIN=${shellQuote(record.joinString)} credfwd-agent join`,
    expiresAt: record.minted?.expiresAt ?? null,
    status: () => coordinator.status(record.id),
    refresh: () => coordinator.refresh(record.id),
    run: async (argv: string[], runOptions?: RunOptions) => {
      try {
        const results = withHosts(await coordinator.run(record.id, argv, runOptions), agents.workers);
        audited({ action: 'run', outcome: 'ok' }, record.id);
        return results;
      } catch (err) {
        audited({ action: 'run', ...failed(err) }, record.id);
        throw err;
      }
    },
    close,
  });
}
