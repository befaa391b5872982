import { setTimeout as delay } from 'node:timers/promises';
import { CredfwdError, errorMessage, isCredfwdError, type Logger } from '@credfwd/shared';
import { launchBackendFor, waitForWorkers, type LaunchedAgents, type LaunchProgress, type WorkerPlacementOptions, type WorkerReadiness } from '../backends/index.ts';
import {
  DEFAULT_DURATION_SECONDS,
  createMinter,
  launchAborted,
  planCluster,
  unlessAborted,
  withHosts,
  type ClusterHandle,
  type ClusterOptions,
  type RunRequest,
} from '../core/index.ts';
import { AdminClient } from './admin-client.ts';
import { LeaseRenewal } from './lease-renewal.ts';

export interface RemoteLaunchOptions extends ClusterOptions, WorkerPlacementOptions {
  /** `https://HOST:PORT` of any replica of the service. */
  coordinatorUrl: string;
  /** Hex SHA-256 of the service certificate. */
  coordinatorPin: string;
  adminToken: string;
  logger: Logger;
  echoAgentLogs?: boolean;
  onProgress?: (ready: number, total: number, progress: LaunchProgress) => void;
  readyTimeoutMs?: number;
  /** Aborts the launch as `launchCluster`'s `signal` does: the cluster is deleted, local workers stopped, ABORTED thrown. */
  signal?: AbortSignal;
  /**
   * The cluster's lease, renewed for as long as this launcher runs: the
   * service deletes the cluster once it lapses (the launcher was killed).
   * Undefined: the service's default; null (`--keep`): no lease, and the
   * cluster stays on the service when the launcher exits, until deleted.
   */
  leaseSeconds?: number | null;
}

/**
 * A cluster on a distributed coordinator service, with the workers this
 * launch started joined to it; closing it leaves a kept cluster on the service.
 */
export type RemoteCluster = ClusterHandle<Omit<RunRequest, 'argv'>>;

const POLL_MS = 200;

/**
 * `credfwd launch --coordinator`: creates the cluster through a replica's
 * admin API and starts local workers on it. In `forward` mode the
 * launcher's identity is turned into temporary credentials here
 * (GetSessionToken, or its own temporary credentials passed through) and
 * only those are sent: long-term keys never leave this machine.
 */
export async function launchRemoteCluster(options: RemoteLaunchOptions): Promise<RemoteCluster> {
  const plan = planCluster(options);
  const backend = launchBackendFor(options, plan.delivery);
  const { signal } = options;
  if (signal?.aborted) throw launchAborted(signal);
  const admin = new AdminClient({ url: options.coordinatorUrl, pin: options.coordinatorPin, adminToken: options.adminToken });
  const durationSeconds = options.durationSeconds ?? DEFAULT_DURATION_SECONDS;
  let forwardedCredentials;
  if (plan.spec.kind === 'forward') {
    const minter = createMinter(plan.spec, { clusterId: 'launch', durationSeconds, region: plan.region, logger: options.logger, ...(options.launcher ? { launcher: options.launcher } : {}) });
    const minted = await unlessAborted(minter!.mint(), signal, () => undefined);
    if (!minted.credentials.sessionToken) throw new CredfwdError('LAUNCHER_NO_CREDENTIALS', 'the launcher\'s credentials have no session token to forward', 'log in with temporary credentials, or use long-term keys so credfwd can call GetSessionToken');
    forwardedCredentials = { ...minted.credentials, sessionToken: minted.credentials.sessionToken, expiration: minted.expiresAt.toISOString() };
  }
  const { kind, sessionPolicy: _built, ...role } = plan.spec as Extract<typeof plan.spec, { kind: 'role' }>;
  // The service builds the session policy from the scopes and the caller's own policy, as it does for any API caller.
  const userPolicy = options.sessionPolicy ?? (typeof options.credentials === 'object' && options.credentials ? options.credentials.sessionPolicy : undefined);
  const created = await unlessAborted(admin.createCluster({
    credentials: kind === 'role' ? { ...role, ...(userPolicy !== undefined ? { sessionPolicy: userPolicy } : {}) } : kind,
    ...(options.scopes && options.scopes.length > 0 ? { scopes: options.scopes } : {}),
    // What a policy's maxWorkers is checked against: the workers this launch starts.
    workers: options.hosts ? options.hosts.length * (options.workersPerHost ?? 1) : options.workers ?? 1,
    environ: plan.environ,
    ...(plan.region ? { region: plan.region } : {}),
    ...(options.durationSeconds ? { durationSeconds: options.durationSeconds } : {}),
    ...(plan.delivery !== 'none' ? { delivery: plan.delivery } : {}),
    ...(options.refreshIntervalSeconds ? { refreshIntervalSeconds: options.refreshIntervalSeconds } : {}),
    ...(options.leaseSeconds !== undefined ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(forwardedCredentials ? { forwardedCredentials } : {}),
  }), signal, (late) => void admin.deleteCluster(late.id).catch(() => undefined));
  // From the first moment: waiting for workers may take longer than a short lease.
  const renewal = created.lease ? new LeaseRenewal({ clusterId: created.id, leaseSeconds: created.lease.seconds, logger: options.logger, renew: (timeoutMs) => admin.renewLease(created.id, timeoutMs) }) : undefined;
  renewal?.start();
  const kept = created.lease === null;
  let agents: LaunchedAgents;
  try {
    agents = await backend.start({
      clusterId: created.id,
      joinString: created.joinString,
      coordinatorAddress: new URL(options.coordinatorUrl).host,
      // Agents dial the replicas the join string names: a tunnel to one replica would pin them to it.
      direct: true,
      logger: options.logger,
      ...(signal ? { signal } : {}),
      ...(options.echoAgentLogs ? { echoLogs: true } : {}),
    });
  } catch (err) {
    renewal?.close();
    await admin.deleteCluster(created.id).catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  // A kept cluster outlives its launcher, but not a launch that failed: then nobody could use it.
  const close = (evenIfKept: boolean): Promise<void> => {
    closing ??= (async () => {
      renewal?.close();
      if (kept && !evenIfKept) {
        options.logger.warn({ clusterId: created.id }, 'the cluster stays on the service (kept): delete it with DELETE /v1/clusters/:id when it is no longer needed');
        await agents.stop();
        return;
      }
      await admin.deleteCluster(created.id).catch((err: unknown) => {
        // Already gone (its lease lapsed while the launcher was away): the renewal has said so.
        if (isCredfwdError(err) && err.code === 'CLUSTER_NOT_FOUND') return;
        options.logger.error({ clusterId: created.id, reason: errorMessage(err) }, 'could not delete the cluster');
      });
      await agents.stop();
    })();
    return closing;
  };
  try {
    await waitForWorkers(agents, signal, {
      readiness: serviceReadiness(admin, created.id),
      ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (err) {
    await close(true);
    throw err;
  }
  return {
    id: created.id,
    workers: agents.workers.map((w) => w.agentId),
    hosts: [...new Set(agents.workers.map((w) => w.host))],
    joinString: created.joinString,
    expiresAt: created.expiresAt ? new Date(created.expiresAt) : null,
    run: async (argv, runOptions) => withHosts(await admin.run(created.id, { argv, ...runOptions }), agents.workers),
    close: () => close(false),
  };
}

/** Workers are ready as the service lists them: the admin API has no event stream, so it is polled. */
function serviceReadiness(admin: AdminClient, clusterId: string): WorkerReadiness {
  return {
    watch(expected, report, fail) {
      const stopped = new AbortController();
      void (async () => {
        while (!stopped.signal.aborted) {
          const shown = await admin.showCluster(clusterId) as { agents: Array<{ agentId: string; ackedSeq: number }>; credentials: { seq: number } | null };
          if (stopped.signal.aborted) return;
          const seq = shown.credentials?.seq ?? 0;
          report(new Set(shown.agents.filter((a) => expected.has(a.agentId) && a.ackedSeq >= seq).map((a) => a.agentId)));
          await delay(POLL_MS, undefined, { signal: stopped.signal }).catch(() => undefined);
        }
      })().catch(fail);
      return () => stopped.abort();
    },
  };
}
