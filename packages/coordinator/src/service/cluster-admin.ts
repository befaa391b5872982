import { CredfwdError, formatJoinString, redactEnviron, type Logger } from '@credfwd/shared';
import {
  DEFAULT_DURATION_SECONDS,
  DEFAULT_LEASE_SECONDS,
  createMinter,
  formatScope,
  openCluster,
  planCluster,
  refreshStatusToJson,
  type AuditLog,
  type ClusterLifecycle,
  type CreateClusterRequest,
  type CredentialsOption,
  type Minted,
  type RunRequest,
  type WorkerResult,
} from '../core/index.ts';
import { audited, type AdminCall, type AuditDetails } from './admin-call.ts';
import type { Governance } from './governance.ts';
import { revokeRoleSessions } from './role-revocation.ts';
import type { ClusterStore, PublicClusterRecord } from './cluster-store.ts';
import type { ServiceCluster } from './redis-cluster-records.ts';
import type { ReplicaMetrics } from './replica-metrics.ts';
import type { ReplicaPresence } from './replica-presence.ts';

/** What the admin operations need of their replica. */
export interface ClusterAdminContext {
  /** Read for what the admin API shows, leases and listings. */
  store: ClusterStore;
  /** Creation, refresh, deletion and runs, as in every deployment. */
  lifecycle: ClusterLifecycle<ServiceCluster>;
  /** Counts the STS call of a creation. */
  metrics: ReplicaMetrics;
  logger: Logger;
  governance: Governance;
  audit: AuditLog;
  pin: string;
  /** `HOST:PORT` agents dial this replica at. */
  address(): string;
  /** Undefined until the replica is listening. */
  presence(): ReplicaPresence | undefined;
}

function detailsOf(record: PublicClusterRecord): AuditDetails {
  return { cluster: record.id, mode: record.mode, roleArn: record.roleArn, scopes: record.scopes };
}

/**
 * The admin API's cluster operations: create, show, run, refresh, delete,
 * revoke and lease, each checked against the policy and the actions audited
 * around the cluster lifecycle the embedded coordinator uses too.
 */
export class ClusterAdmin {
  readonly #context: ClusterAdminContext;

  constructor(context: ClusterAdminContext) {
    this.#context = context;
  }

  create(call: AdminCall, request: CreateClusterRequest): Promise<unknown> {
    const details: AuditDetails = { cluster: null };
    return audited(this.#context.audit, 'create', call, details, () => this.#create(call, request, details));
  }

  async #create(call: AdminCall, request: CreateClusterRequest, details: AuditDetails): Promise<unknown> {
    const { lifecycle, metrics, logger } = this.#context;
    const plan = planCluster({
      // zod types `role:ARN` as a plain string; planCluster checks it.
      ...(request.credentials !== undefined ? { credentials: request.credentials as CredentialsOption } : {}),
      ...(request.environ ? { environ: request.environ } : {}),
      ...(request.region ? { region: request.region } : {}),
      ...(request.delivery ? { delivery: request.delivery } : {}),
      ...(request.refreshIntervalSeconds ? { refreshIntervalSeconds: request.refreshIntervalSeconds } : {}),
      ...(request.scopes ? { scopes: request.scopes } : {}),
    });
    const { spec } = plan;
    const scopes = plan.scopes.map(formatScope);
    const roleArn = spec.kind === 'role' ? spec.roleArn : null;
    Object.assign(details, { mode: spec.kind, roleArn, scopes });
    const durationSeconds = (spec.kind === 'role' ? spec.durationSeconds : undefined) ?? request.durationSeconds ?? DEFAULT_DURATION_SECONDS;
    // CloudTrail must name the caller: only the break-glass admin may set another SourceIdentity.
    if (spec.kind === 'role' && spec.sourceIdentity !== undefined && call.principal.via !== 'admin') {
      throw new CredfwdError('POLICY_DENIED', 'on a service the SourceIdentity of a session is its principal', 'drop sourceIdentity from the request: the service sets it to you');
    }
    // Before anything is minted or stored: a denied request changes nothing.
    this.#context.governance.policy.authorizeCreate(call.principal, {
      mode: spec.kind, ...(roleArn ? { roleArn } : {}), durationSeconds, scopes, ...(request.workers !== undefined ? { workers: request.workers } : {}),
    });
    if ((spec.kind === 'forward') !== (request.forwardedCredentials !== undefined)) {
      throw new CredfwdError('USAGE', 'forwardedCredentials go with credentials "forward", and only with it', 'credfwd launch --coordinator sends them; long-term keys never leave the launcher');
    }
    const { id, token, verifier } = openCluster();
    details.cluster = id;
    let minted: Minted | null = null;
    if (spec.kind === 'role') {
      const minter = createMinter(spec, { clusterId: id, durationSeconds, region: plan.region, logger, principal: call.principal.name });
      if (minter) minted = await metrics.counted(minter).mint();
    } else if (request.forwardedCredentials) {
      const { expiration, ...credentials } = request.forwardedCredentials;
      minted = { credentials: { ...credentials, expiration }, expiresAt: new Date(expiration), source: 'passthrough' };
      if (minted.expiresAt.getTime() <= Date.now()) throw new CredfwdError('CONFIG_INVALID', 'the forwarded credentials have expired', 'log in again on the launcher');
    }
    const record: PublicClusterRecord = {
      id,
      mode: spec.kind,
      delivery: plan.delivery,
      region: plan.region,
      durationSeconds,
      refreshIntervalSeconds: request.refreshIntervalSeconds ?? null,
      leaseSeconds: request.leaseSeconds === undefined ? DEFAULT_LEASE_SECONDS : request.leaseSeconds,
      verifier,
      createdAt: new Date().toISOString(),
      principal: call.principal.name,
      roleArn,
      scopes,
    };
    await lifecycle.create({
      record: { public: record, secret: { spec, environ: plan.environ } },
      session: { id, verifier, delivery: plan.delivery, environ: plan.environ, region: plan.region },
      first: minted,
      refreshed: spec.kind === 'role',
      intervalSeconds: request.refreshIntervalSeconds,
    });
    // Replicas behind one load balancer share one public address: list it once.
    const addresses = [...new Set((await this.#context.presence()?.liveReplicas() ?? []).map((r) => r.address))];
    logger.info({ clusterId: id, principal: call.principal.name, mode: spec.kind, leaseSeconds: record.leaseSeconds, expiresAt: minted?.expiresAt.toISOString(), region: plan.region, environ: redactEnviron(plan.environ) }, 'cluster created');
    return {
      id,
      mode: spec.kind,
      delivery: plan.delivery,
      // A secret: it holds the join token, which is not kept anywhere after this answer.
      joinString: formatJoinString({ addresses: addresses.length > 0 ? addresses : [this.#context.address()], clusterId: id, token, pin: this.#context.pin }),
      expiresAt: minted?.expiresAt.toISOString() ?? null,
      lease: await this.#lease(id, record.leaseSeconds),
    };
  }

  /** Every cluster the caller may act on; one deleted while the list is read drops out of it rather than failing it. */
  async list(call: AdminCall): Promise<unknown[]> {
    const { store, governance } = this.#context;
    const shown = await Promise.all((await store.ids()).map(async (id) => {
      const record = await store.get(id).catch(() => undefined);
      if (!record || !governance.policy.mayAct(call.principal, record.principal)) return undefined;
      return this.#describe(record).catch(() => undefined);
    }));
    return shown.filter((c) => c !== undefined);
  }

  async describe(call: AdminCall, clusterId: string): Promise<unknown> {
    return this.#describe(await this.#owned(call, clusterId));
  }

  /** Runs a command on every worker of a cluster the caller may act on. */
  run(call: AdminCall, clusterId: string, request: RunRequest): Promise<WorkerResult[]> {
    const details: AuditDetails = { cluster: clusterId };
    return audited(this.#context.audit, 'run', call, details, async () => {
      Object.assign(details, detailsOf(await this.#owned(call, clusterId)));
      const { argv, ...options } = request;
      return this.#context.lifecycle.run(clusterId, argv, options);
    });
  }

  /** Refreshes a role cluster now. */
  refreshNow(call: AdminCall, clusterId: string): Promise<void> {
    const details: AuditDetails = { cluster: clusterId };
    return audited(this.#context.audit, 'refresh', call, details, async () => {
      Object.assign(details, detailsOf(await this.#owned(call, clusterId)));
      if (!(await this.#context.lifecycle.refreshNow(clusterId))) {
        throw new CredfwdError('USAGE', `cluster ${clusterId} is not refreshed by the service`, 'only role clusters are; launch a forward cluster again for new credentials');
      }
    });
  }

  /** The cluster's record when it exists and the caller may act on it; CLUSTER_NOT_FOUND or POLICY_DENIED (audited) otherwise. */
  async #owned(call: AdminCall, clusterId: string): Promise<PublicClusterRecord> {
    const record = await this.#context.store.get(clusterId);
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted; list clusters with GET /v1/clusters');
    try {
      this.#context.governance.policy.authorizeOn(call.principal, record.principal, clusterId);
    } catch (err) {
      this.#context.audit.record({ action: 'denied', outcome: 'denied', principal: call.principal.name, requestId: call.requestId, ...detailsOf(record), code: 'POLICY_DENIED', reason: (err as Error).message });
      throw err;
    }
    return record;
  }

  async #describe(record: PublicClusterRecord): Promise<unknown> {
    const { store } = this.#context;
    const clusterId = record.id;
    const current = await store.current(clusterId);
    const refresh = await this.#context.lifecycle.refreshStatus(clusterId);
    const agents = await this.#context.presence()?.agentsOf(clusterId) ?? [];
    return {
      id: record.id,
      mode: record.mode,
      delivery: record.delivery,
      region: record.region,
      createdAt: record.createdAt,
      principal: record.principal,
      roleArn: record.roleArn,
      scopes: record.scopes,
      lease: await this.#lease(clusterId, record.leaseSeconds),
      credentials: current ? { seq: current.seq, expiresAt: current.expiresAt.toISOString(), nextRefreshAt: current.refreshAt?.toISOString() ?? null } : null,
      refresh: refresh ? refreshStatusToJson(refresh) : null,
      agents,
    };
  }

  delete(call: AdminCall, clusterId: string): Promise<void> {
    const details: AuditDetails = { cluster: clusterId };
    return audited(this.#context.audit, 'delete', call, details, async () => {
      Object.assign(details, detailsOf(await this.#owned(call, clusterId)));
      const deleted = await this.#context.lifecycle.delete(clusterId);
      if (!deleted) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted already, or its lease lapsed');
      this.#context.logger.info({ clusterId, principal: call.principal.name }, 'cluster deleted');
    });
  }

  /**
   * Deletes a role cluster and denies its sessions on the role, so that
   * credentials copied off a worker stop working too; `allSessions` denies
   * every session of the role issued before now. When IAM refuses, the
   * cluster is deleted all the same and REVOKE_FAILED says what is left.
   */
  revoke(call: AdminCall, clusterId: string, allSessions: boolean): Promise<unknown> {
    const details: AuditDetails = { cluster: clusterId };
    return audited(this.#context.audit, 'revoke', call, details, async () => {
      const record = await this.#owned(call, clusterId);
      Object.assign(details, detailsOf(record));
      if (record.mode !== 'role' || !record.roleArn) {
        throw new CredfwdError('CONFIG_INVALID', `cluster ${clusterId} forwards no role (${record.mode}): there is no role to put a deny on`, 'delete it instead (credfwd clusters delete); forwarded launcher sessions end at their expiry');
      }
      if (allSessions) this.#context.governance.policy.authorizeRevokeAll(call.principal, record.roleArn);
      const deleted = await this.#context.lifecycle.delete(clusterId);
      if (!deleted) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted already, or its lease lapsed');
      const revocation = await revokeRoleSessions({ roleArn: record.roleArn, clusterId, allSessions }, record.region);
      this.#context.logger.warn({ clusterId, principal: call.principal.name, role: record.roleArn, policy: revocation.policyName }, 'cluster revoked');
      return { id: clusterId, roleArn: record.roleArn, policyName: revocation.policyName, allSessions };
    });
  }

  async renewLease(call: AdminCall, clusterId: string): Promise<unknown> {
    const { store } = this.#context;
    const gone = (): CredfwdError => new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'its lease lapsed or it was deleted; its agents were revoked');
    const record = await this.#owned(call, clusterId).catch((err: unknown) => {
      throw (err as CredfwdError).code === 'CLUSTER_NOT_FOUND' ? gone() : err;
    });
    if (record.leaseSeconds === null) return null;
    const expiresAt = await store.renewLease(clusterId, record.leaseSeconds);
    if (!expiresAt) throw gone();
    return { seconds: record.leaseSeconds, expiresAt: expiresAt.toISOString() };
  }

  /** A cluster's lease as the admin API shows it: null for a kept cluster. */
  async #lease(clusterId: string, seconds: number | null): Promise<{ seconds: number; expiresAt: string | null } | null> {
    if (seconds === null) return null;
    return { seconds, expiresAt: (await this.#context.store.leaseExpiry(clusterId))?.toISOString() ?? null };
  }
}
