import { CredfwdError, formatJoinString, redactEnviron, type Logger } from '@credfwd/shared';
import {
  DEFAULT_DURATION_SECONDS,
  DEFAULT_LEASE_SECONDS,
  createMinter,
  nextRefreshAt,
  openCluster,
  planCluster,
  type CreateClusterRequest,
  type CredentialsOption,
  type CurrentCredentials,
  type Minted,
} from '../core/index.ts';
import type { ClusterStore, DeletedCluster, PublicClusterRecord } from './cluster-store.ts';
import type { HeldClusters } from './held-clusters.ts';
import type { ReplicaBus } from './replica-bus.ts';
import type { ReplicaPresence } from './replica-presence.ts';
import type { ReplicaRefresh } from './replica-refresh.ts';

/** What the admin operations need of their replica. */
export interface ClusterAdminContext {
  store: ClusterStore;
  held: HeldClusters;
  refresh: ReplicaRefresh;
  bus: ReplicaBus;
  logger: Logger;
  pin: string;
  /** `HOST:PORT` agents dial this replica at. */
  address(): string;
  /** Undefined until the replica is listening. */
  presence(): ReplicaPresence | undefined;
}

/**
 * The admin API's cluster operations on the shared store: create, show,
 * delete and lease. Whatever changes a cluster is announced on the bus, so
 * every replica's hub follows.
 */
export class ClusterAdmin {
  readonly #context: ClusterAdminContext;

  constructor(context: ClusterAdminContext) {
    this.#context = context;
  }

  async create(request: CreateClusterRequest): Promise<unknown> {
    const { store, held, refresh, bus, logger } = this.#context;
    const plan = planCluster({
      // zod types `role:ARN` as a plain string; planCluster checks it.
      ...(request.credentials !== undefined ? { credentials: request.credentials as CredentialsOption } : {}),
      ...(request.environ ? { environ: request.environ } : {}),
      ...(request.region ? { region: request.region } : {}),
      ...(request.delivery ? { delivery: request.delivery } : {}),
      ...(request.refreshIntervalSeconds ? { refreshIntervalSeconds: request.refreshIntervalSeconds } : {}),
    });
    const { spec } = plan;
    if ((spec.kind === 'forward') !== (request.forwardedCredentials !== undefined)) {
      throw new CredfwdError('USAGE', 'forwardedCredentials go with credentials "forward", and only with it', 'credfwd launch --coordinator sends them; long-term keys never leave the launcher');
    }
    const { id, token, verifier } = openCluster();
    const durationSeconds = request.durationSeconds ?? DEFAULT_DURATION_SECONDS;
    let minted: Minted | null = null;
    if (spec.kind === 'role') {
      const minter = createMinter(spec, { clusterId: id, durationSeconds, region: plan.region, logger });
      if (minter) minted = await refresh.mint(minter);
    } else if (request.forwardedCredentials) {
      const { expiration, ...credentials } = request.forwardedCredentials;
      minted = { credentials: { ...credentials, expiration }, expiresAt: new Date(expiration), source: 'passthrough' };
      if (minted.expiresAt.getTime() <= Date.now()) throw new CredfwdError('CONFIG_INVALID', 'the forwarded credentials have expired', 'log in again on the launcher');
    }
    const refreshAt = spec.kind === 'role' && minted ? nextRefreshAt(minted.expiresAt, Date.now(), Math.random, request.refreshIntervalSeconds) : undefined;
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
    };
    const current: CurrentCredentials | null = minted ? { seq: await store.nextSeq(), credentials: minted.credentials, expiresAt: minted.expiresAt, ...(refreshAt ? { refreshAt } : {}) } : null;
    await store.create(record, { spec, environ: plan.environ }, current);
    if (current && refreshAt) await refresh.first(id, { ...current, refreshAt });
    await held.hold(id);
    await bus.publish({ type: 'created', clusterId: id });
    // Replicas behind one load balancer share one public address: list it once.
    const addresses = [...new Set((await this.#context.presence()?.liveReplicas() ?? []).map((r) => r.address))];
    logger.info({ clusterId: id, mode: spec.kind, leaseSeconds: record.leaseSeconds, expiresAt: minted?.expiresAt.toISOString(), region: plan.region, environ: redactEnviron(plan.environ) }, 'cluster created');
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

  /** Every cluster; one deleted while the list is read drops out of it rather than failing it. */
  async list(): Promise<unknown[]> {
    const shown = await Promise.all((await this.#context.store.ids()).map((id) => this.describe(id).catch(() => undefined)));
    return shown.filter((c) => c !== undefined);
  }

  async describe(clusterId: string): Promise<unknown> {
    const { store } = this.#context;
    const record = await store.get(clusterId);
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted; list clusters with GET /v1/clusters');
    const current = await store.current(clusterId);
    const refresh = await store.refreshStatus(clusterId);
    const agents = await this.#context.presence()?.agentsOf(clusterId) ?? [];
    return {
      id: record.id,
      mode: record.mode,
      delivery: record.delivery,
      region: record.region,
      createdAt: record.createdAt,
      lease: await this.#lease(clusterId, record.leaseSeconds),
      credentials: current ? { seq: current.seq, expiresAt: current.expiresAt.toISOString(), nextRefreshAt: current.refreshAt?.toISOString() ?? null } : null,
      refresh: refresh ?? null,
      agents,
    };
  }

  /** Throws CLUSTER_NOT_FOUND unless the cluster exists. */
  async mustExist(clusterId: string): Promise<void> {
    if (!(await this.#context.store.get(clusterId))) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted');
  }

  async delete(clusterId: string): Promise<void> {
    const deleted = await this.#context.store.delete(clusterId);
    if (!deleted) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted already, or its lease lapsed');
    await this.cleanUpDeleted(clusterId, deleted);
    this.#context.logger.info({ clusterId }, 'cluster deleted');
  }

  /** After a deletion (by hand or by lapse): no refresh job left, agents revoked on every replica. */
  async cleanUpDeleted(clusterId: string, deleted: DeletedCluster): Promise<void> {
    this.#context.held.forget(clusterId);
    if (deleted.seq !== undefined) await this.#context.refresh.remove({ clusterId, seq: deleted.seq });
    await this.#context.bus.publish({ type: 'revoked', clusterId });
  }

  async renewLease(clusterId: string): Promise<unknown> {
    const { store } = this.#context;
    const record = await store.get(clusterId);
    const gone = (): CredfwdError => new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'its lease lapsed or it was deleted; its agents were revoked');
    if (!record) throw gone();
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
