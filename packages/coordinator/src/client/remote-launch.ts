import { setTimeout as delay } from 'node:timers/promises';
import { CredfwdError, isCredfwdError, type Logger } from '@credfwd/shared';
import { AdminClient } from './admin-client.ts';
import type { RunRequest } from './admin-api.ts';
import { DEFAULT_DURATION_SECONDS, planCluster, type ClusterOptions } from './coordinator.ts';
import { LeaseRenewal } from './lease-renewal.ts';
import { LocalAgents } from './local-backend.ts';
import { launchAborted, unlessAborted } from './launch-abort.ts';
import { createMinter } from './minter.ts';
import type { WorkerResult } from './task-dispatch.ts';

export interface RemoteLaunchOptions extends ClusterOptions {
  /** `https://HOST:PORT` of any replica of the service. */
  coordinatorUrl: string;
  /** Hex SHA-256 of the service certificate. */
  coordinatorPin: string;
  adminToken: string;
  workers: number;
  logger: Logger;
  echoAgentLogs?: boolean;
  onProgress?: (ready: number, total: number) => void;
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

/** A cluster on a distributed coordinator service, with local workers joined to it. */
export interface RemoteCluster {
  id: string;
  workers: string[];
  /** A secret: it holds the join token. */
  joinString: string;
  expiresAt: Date | null;
  run(argv: string[], options?: Omit<RunRequest, 'argv'>): Promise<WorkerResult[]>;
  /** Deletes the cluster (its agents stop) unless it is kept, and waits for the local workers. Idempotent. */
  close(): Promise<void>;
}

const POLL_MS = 200;
const DEFAULT_READY_TIMEOUT_MS = 60_000;

/**
 * `credfwd launch --coordinator`: creates the cluster through a replica's
 * admin API and starts local workers on it. In `forward` mode the
 * launcher's identity is turned into temporary credentials here
 * (GetSessionToken, or its own temporary credentials passed through) and
 * only those are sent: long-term keys never leave this machine.
 */
export async function launchRemoteCluster(options: RemoteLaunchOptions): Promise<RemoteCluster> {
  const plan = planCluster(options);
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
  const { kind, ...role } = plan.spec;
  const created = await unlessAborted(admin.createCluster({
    credentials: kind === 'role' ? role as Omit<Extract<typeof plan.spec, { kind: 'role' }>, 'kind'> : kind,
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
  const agents = LocalAgents.start({ count: options.workers, clusterId: created.id, joinString: created.joinString, logger: options.logger, ...(options.echoAgentLogs ? { echoLogs: true } : {}) });
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
        options.logger.error({ clusterId: created.id, reason: err instanceof Error ? err.message : String(err) }, 'could not delete the cluster');
      });
      await agents.stop();
    })();
    return closing;
  };
  try {
    await waitForWorkers(admin, created.id, agents, options);
  } catch (err) {
    // Agents still starting never hear of the deletion: signal them now.
    if (signal?.aborted) agents.terminate();
    await close(true);
    throw err;
  }
  return {
    id: created.id,
    workers: agents.ids,
    joinString: created.joinString,
    expiresAt: created.expiresAt ? new Date(created.expiresAt) : null,
    run: (argv, runOptions) => admin.run(created.id, { argv, ...runOptions }),
    close: () => close(false),
  };
}

/** Polls the cluster until every local worker holds its current credentials (or has joined, in null mode): the admin API has no event stream. */
async function waitForWorkers(admin: AdminClient, clusterId: string, agents: LocalAgents, options: RemoteLaunchOptions): Promise<void> {
  let failed: CredfwdError | undefined;
  agents.onUnexpectedExit((error) => { failed = error; });
  const deadline = Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  const { signal } = options;
  for (;;) {
    if (failed) throw failed;
    if (signal?.aborted) throw launchAborted(signal);
    const shown = await admin.showCluster(clusterId) as { agents: Array<{ agentId: string; ackedSeq: number }>; credentials: { seq: number } | null };
    const seq = shown.credentials?.seq ?? 0;
    const ready = shown.agents.filter((a) => agents.ids.includes(a.agentId) && a.ackedSeq >= seq).length;
    options.onProgress?.(ready, agents.ids.length);
    if (ready === agents.ids.length) return;
    if (Date.now() > deadline) {
      throw new CredfwdError('AGENT_START_FAILED', `only ${ready} of ${agents.ids.length} workers were ready in time`, 'run with CREDFWD_LOG_LEVEL=debug to see the agent logs');
    }
    // An abort ends the wait at once (AbortError), and the check at the top of the loop reports it.
    await delay(POLL_MS, undefined, signal ? { signal } : {}).catch(() => undefined);
  }
}
