import { CredfwdError, type Logger } from '@credfwd/shared';
import { AdminClient } from './admin-client.ts';
import type { RunRequest } from './admin-api.ts';
import { DEFAULT_DURATION_SECONDS, planCluster, type ClusterOptions } from './coordinator.ts';
import { LocalAgents } from './local-backend.ts';
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
}

/** A cluster on a distributed coordinator service, with local workers joined to it. */
export interface RemoteCluster {
  id: string;
  workers: string[];
  /** A secret: it holds the join token. */
  joinString: string;
  expiresAt: Date | null;
  run(argv: string[], options?: Omit<RunRequest, 'argv'>): Promise<WorkerResult[]>;
  /** Deletes the cluster (its agents stop) and waits for the local workers. Idempotent. */
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
  const admin = new AdminClient({ url: options.coordinatorUrl, pin: options.coordinatorPin, adminToken: options.adminToken });
  const durationSeconds = options.durationSeconds ?? DEFAULT_DURATION_SECONDS;
  let forwardedCredentials;
  if (plan.spec.kind === 'forward') {
    const minter = createMinter(plan.spec, { clusterId: 'launch', durationSeconds, region: plan.region, logger: options.logger, ...(options.launcher ? { launcher: options.launcher } : {}) });
    const minted = await minter!.mint();
    if (!minted.credentials.sessionToken) throw new CredfwdError('LAUNCHER_NO_CREDENTIALS', 'the launcher\'s credentials have no session token to forward', 'log in with temporary credentials, or use long-term keys so credfwd can call GetSessionToken');
    forwardedCredentials = { ...minted.credentials, sessionToken: minted.credentials.sessionToken, expiration: minted.expiresAt.toISOString() };
  }
  const { kind, ...role } = plan.spec;
  const created = await admin.createCluster({
    credentials: kind === 'role' ? role as Omit<Extract<typeof plan.spec, { kind: 'role' }>, 'kind'> : kind,
    environ: plan.environ,
    ...(plan.region ? { region: plan.region } : {}),
    ...(options.durationSeconds ? { durationSeconds: options.durationSeconds } : {}),
    ...(plan.delivery !== 'none' ? { delivery: plan.delivery } : {}),
    ...(options.refreshIntervalSeconds ? { refreshIntervalSeconds: options.refreshIntervalSeconds } : {}),
    ...(forwardedCredentials ? { forwardedCredentials } : {}),
  });
  const agents = LocalAgents.start({ count: options.workers, clusterId: created.id, joinString: created.joinString, logger: options.logger, ...(options.echoAgentLogs ? { echoLogs: true } : {}) });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await admin.deleteCluster(created.id).catch((err: unknown) => options.logger.error({ clusterId: created.id, reason: err instanceof Error ? err.message : String(err) }, 'could not delete the cluster'));
      await agents.stop();
    })();
    return closing;
  };
  try {
    await waitForWorkers(admin, created.id, agents, options);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    id: created.id,
    workers: agents.ids,
    joinString: created.joinString,
    expiresAt: created.expiresAt ? new Date(created.expiresAt) : null,
    run: (argv, runOptions) => admin.run(created.id, { argv, ...runOptions }),
    close,
  };
}

/** Polls the cluster until every local worker holds its current credentials (or has joined, in null mode): the admin API has no event stream. */
async function waitForWorkers(admin: AdminClient, clusterId: string, agents: LocalAgents, options: RemoteLaunchOptions): Promise<void> {
  let failed: CredfwdError | undefined;
  agents.onUnexpectedExit((error) => { failed = error; });
  const deadline = Date.now() + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  for (;;) {
    if (failed) throw failed;
    const shown = await admin.showCluster(clusterId) as { agents: Array<{ agentId: string; ackedSeq: number }>; credentials: { seq: number } | null };
    const seq = shown.credentials?.seq ?? 0;
    const ready = shown.agents.filter((a) => agents.ids.includes(a.agentId) && a.ackedSeq >= seq).length;
    options.onProgress?.(ready, agents.ids.length);
    if (ready === agents.ids.length) return;
    if (Date.now() > deadline) {
      throw new CredfwdError('AGENT_START_FAILED', `only ${ready} of ${agents.ids.length} workers were ready in time`, 'run with CREDFWD_LOG_LEVEL=debug to see the agent logs');
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
