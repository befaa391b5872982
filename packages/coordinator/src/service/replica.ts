import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  CredfwdError,
  checkEnvironSize,
  createJoinToken,
  formatJoinString,
  redactEnviron,
  tokenVerifier,
  type Exit,
  type Logger,
  type OnRefresh,
  type Output,
} from '@credfwd/shared';
import { createAdminApi, DEFAULT_LEASE_SECONDS, type CreateClusterRequest, type RunRequest } from './admin-api.ts';
import { AgentHub, type AdmissionLimits, type CurrentCredentials } from './agent-hub.ts';
import type { SessionCluster } from './agent-session.ts';
import { ClusterRun } from './cluster-run.ts';
import { ClusterStore, type DeletedCluster, type PublicClusterRecord, type StoredCredentials, type StoredRefreshStatus } from './cluster-store.ts';
import { DEFAULT_DURATION_SECONDS, planCluster, splitHostPort } from './coordinator.ts';
import type { CredentialsOption } from './credentials-spec.ts';
import { DistributedRefresh, type RefreshJob } from './distributed-refresh.ts';
import { LeaseSweep } from './lease-sweep.ts';
import { createMinter, type Minted, type Minter } from './minter.ts';
import { RedisKeys } from './redis-keys.ts';
import { nextRefreshDelay } from './refresh-schedule.ts';
import { refreshErrorOf } from './refresh-scheduler.ts';
import { ReplicaBus, type BusMessage } from './replica-bus.ts';
import { ReplicaMetrics } from './replica-metrics.ts';
import { ReplicaPresence } from './replica-presence.ts';
import type { ReplicaSecrets } from './replica-secrets.ts';
import { loadSharedTlsIdentity } from './shared-tls-identity.ts';
import type { WorkerResult } from './task-dispatch.ts';
import type { TlsIdentity } from './tls-identity.ts';

export interface ReplicaOptions {
  logger: Logger;
  /** `HOST:PORT` to listen on (agents, admin API, metrics). */
  listen: string;
  /** `HOST:PORT` agents dial, when it differs from the listen address (a TCP load balancer, another interface). */
  publicAddress?: string;
  redisUrl: string;
  /** Every Redis key starts with this; `credfwd` by default. */
  redisPrefix?: string;
  secrets: ReplicaSecrets;
  /** A given certificate for every replica (`--tls-cert/--tls-key`); otherwise one shared through Redis. */
  tls?: TlsIdentity;
  heartbeatIntervalMs?: number;
  /**
   * Limits on unauthenticated traffic to the agent port, as the embedded
   * coordinator takes them; see {@link AdmissionLimits} for the defaults.
   * `credfwd serve` keeps the defaults; the fan-out benchmark raises them.
   */
  limits?: Partial<AdmissionLimits>;
  /**
   * How often the replica plans every cluster's next refresh again (default
   * 60 s): a no-op for refreshes already planned, and the repair for one whose
   * planning a crash cut short.
   */
  refreshSweepMs?: number;
  /** How often the replica looks for clusters whose lease lapsed (default 1 s). */
  leaseSweepMs?: number;
}

/** How often a replica collecting a run checks for dead replicas and lost agents. */
const RUN_CHECK_MS = 1_000;
/** How often a replica plans every refresh again: see {@link ReplicaOptions.refreshSweepMs}. */
const REFRESH_SWEEP_MS = 60_000;
/** How long `/healthz` waits for Redis to answer a PING. */
const HEALTH_PING_MS = 1_000;

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function redisUnavailable(url: string, cause: unknown): CredfwdError {
  const { host, port } = new URL(url);
  return new CredfwdError('REDIS_UNAVAILABLE', `cannot reach Redis at ${host}:${port || 6379}: ${reason(cause)}`, 'check --redis / REDIS_URL and that Redis is running', { cause });
}

/**
 * One replica of a distributed coordinator service. Replicas share Redis:
 * the cluster registry (secrets sealed with the state key), a BullMQ queue
 * on which exactly one replica mints each refresh, and a pub/sub channel
 * that carries new credentials, revocations and task traffic to whichever
 * replica holds each agent. Each replica serves agents, the admin API,
 * `/metrics` and `/healthz` on one HTTPS port.
 */
export class Replica {
  readonly replicaId = `r-${randomBytes(4).toString('hex')}`;
  /** `HOST:PORT` agents dial. */
  address = '';
  readonly pin: string;
  readonly hub: AgentHub;
  readonly #options: ReplicaOptions;
  readonly #logger: Logger;
  readonly #keys: RedisKeys;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #bullConnection: Redis;
  readonly #store: ClusterStore;
  readonly #bus: ReplicaBus;
  readonly #metrics: ReplicaMetrics;
  readonly #refresh: DistributedRefresh;
  readonly #leaseSweep: LeaseSweep;
  #presence: ReplicaPresence | undefined;
  /** Expiry of the credentials this replica serves per cluster it holds. */
  readonly #expiries = new Map<string, Date>();
  /** Null-mode clusters this replica holds: they have no expiry but do have agents. */
  readonly #nullClusters = new Set<string>();
  readonly #runs = new Map<string, ClusterRun>();
  #runCheck: NodeJS.Timeout | undefined;
  #refreshSweep: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: ReplicaOptions, redis: Redis, tls: TlsIdentity) {
    this.#options = options;
    this.#logger = options.logger;
    this.#redis = redis;
    this.pin = tls.pin;
    const keys = new RedisKeys(options.redisPrefix ?? 'credfwd');
    this.#keys = keys;
    this.#subscriber = redis.duplicate();
    // BullMQ blocks on its connections and must never give up a command: its own, with no retry limit.
    this.#bullConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    this.#store = new ClusterStore(redis, keys, options.secrets.stateKey);
    this.#bus = new ReplicaBus({ publisher: redis, subscriber: this.#subscriber, channel: keys.events, stateKey: options.secrets.stateKey, logger: this.#logger });
    this.#metrics = new ReplicaMetrics({
      connectedAgents: () => [...this.#expiries.keys(), ...this.#nullClusters].reduce((n, id) => n + this.hub.agents(id).length, 0),
      // Metrics must answer while Redis is away: the gauge is left out then.
      clusters: () => this.#store.count().catch(() => undefined),
      earliestExpirySeconds: () => {
        const earliest = Math.min(...[...this.#expiries.values()].map((d) => d.getTime()));
        return Number.isFinite(earliest) ? Math.round((earliest - Date.now()) / 1000) : undefined;
      },
    });
    this.hub = new AgentHub({
      tls,
      logger: this.#logger,
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      onRequest: createAdminApi({
        adminToken: options.secrets.adminToken,
        replicaId: this.replicaId,
        logger: this.#logger,
        createCluster: (request) => this.#createCluster(request),
        listClusters: async () => {
          // A cluster deleted while the list is read drops out of it rather than failing it.
          const shown = await Promise.all((await this.#store.ids()).map((id) => this.#describe(id).catch(() => undefined)));
          return shown.filter((c) => c !== undefined);
        },
        showCluster: (id) => this.#describe(id),
        runOnCluster: (id, request) => this.#run(id, request),
        refreshCluster: (id) => this.#refreshNow(id),
        deleteCluster: (id) => this.#deleteCluster(id),
        renewLease: (id) => this.#renewLease(id),
        metrics: () => this.#metrics.render(),
        redisReachable: () => this.#redisReachable(),
      }),
      loadCluster: (id) => this.#loadCluster(id),
      onUnclaimedTaskMessage: (clusterId, agentId, message) => this.#relayTaskFrame(clusterId, agentId, message),
    });
    this.hub.on('refused', (code) => this.#metrics.refused(code));
    this.hub.on('agent-ready', (clusterId, agentId, seq) => {
      const remote = this.hub.agent(clusterId, agentId)?.remote ?? '';
      this.#presence?.agentJoined(clusterId, { agentId, remote, ackedSeq: seq }).catch((err: unknown) => this.#logger.warn({ clusterId, agentId, reason: reason(err) }, 'could not register agent in Redis'));
    });
    this.hub.on('agent-gone', (clusterId, agentId) => {
      // A reconnecting agent's old connection closes after its new one is in.
      if (this.hub.agent(clusterId, agentId)) return;
      this.#presence?.agentLeft(clusterId, agentId).catch((err: unknown) => this.#logger.warn({ clusterId, agentId, reason: reason(err) }, 'could not unregister agent in Redis'));
    });
    this.#refresh = new DistributedRefresh({ connection: this.#bullConnection, prefix: keys.bull, logger: this.#logger, refresh: (job) => this.#refreshJob(job) });
    this.#leaseSweep = new LeaseSweep({
      logger: this.#logger,
      lapsed: () => this.#store.lapsedLeases(100),
      deleteIfLapsed: async (id) => {
        const deleted = await this.#store.delete(id, true);
        if (deleted) await this.#cleanUpDeleted(id, deleted);
        return deleted;
      },
    }, options.leaseSweepMs);
  }

  /** Connects to Redis, takes the shared TLS identity, listens, and loads every cluster. */
  static async start(options: ReplicaOptions): Promise<Replica> {
    const listen = splitHostPort(options.listen, 'listen address');
    if (options.publicAddress !== undefined) splitHostPort(options.publicAddress, 'public address');
    const redis = new Redis(options.redisUrl, { lazyConnect: true });
    redis.on('error', (err) => options.logger.warn({ reason: err.message }, 'Redis connection error; ioredis reconnects by itself'));
    try {
      await redis.connect();
    } catch (cause) {
      redis.disconnect();
      throw redisUnavailable(options.redisUrl, cause);
    }
    let replica: Replica;
    try {
      const keys = new RedisKeys(options.redisPrefix ?? 'credfwd');
      const tls = options.tls ?? (await loadSharedTlsIdentity(redis, keys.tls, options.secrets.stateKey));
      replica = new Replica(options, redis, tls);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    try {
      await replica.#begin(listen.host, listen.port);
    } catch (err) {
      await replica.close();
      throw err;
    }
    return replica;
  }

  async #begin(host: string, port: number): Promise<void> {
    let bound;
    try {
      bound = await this.hub.listen(host, port);
    } catch (cause) {
      throw new CredfwdError('CONFIG_INVALID', `cannot listen on ${host}:${port}: ${reason(cause)}`, 'choose another --listen address or port', { cause });
    }
    const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    this.address = this.#options.publicAddress ?? `${shown === '0.0.0.0' || shown === '[::]' ? '127.0.0.1' : shown}:${bound.port}`;
    this.#subscriber.on('error', (err) => this.#logger.warn({ reason: err.message }, 'Redis subscriber error; ioredis reconnects by itself'));
    this.#bullConnection.on('error', (err) => this.#logger.debug({ reason: err.message }, 'Redis (BullMQ) connection error'));
    await this.#bus.start((message) => this.#onBusMessage(message));
    this.#presence = new ReplicaPresence({ redis: this.#redis, keys: this.#keys, replicaId: this.replicaId, address: this.address, logger: this.#logger });
    await this.#presence.start();
    await this.#resync();
    // Pub/sub messages sent while Redis was away are lost: after a reconnect, Redis itself is read again.
    this.#redis.on('ready', () => {
      this.#resync().catch((err: unknown) => this.#logger.warn({ reason: reason(err) }, 'resync after Redis reconnect failed'));
    });
    this.#runCheck = setInterval(() => void this.#checkRuns(), RUN_CHECK_MS);
    this.#runCheck.unref();
    this.#refreshSweep = setInterval(() => {
      this.#planRefreshes().catch((err: unknown) => this.#logger.warn({ reason: reason(err) }, 'could not plan refreshes'));
    }, this.#options.refreshSweepMs ?? REFRESH_SWEEP_MS);
    this.#refreshSweep.unref();
    this.#leaseSweep.start();
    this.#logger.info({ replicaId: this.replicaId, address: this.address, pin: this.pin }, 'replica listening');
  }

  /** Leaves the service cleanly: agents reconnect to another replica. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#runCheck);
      clearInterval(this.#refreshSweep);
      this.#leaseSweep.close();
      await this.#presence?.close().catch(() => undefined);
      await this.#refresh.close().catch(() => undefined);
      // The clusters live on in the service: agents move to another replica instead of being revoked.
      await this.hub.close({ revoke: false });
      this.#subscriber.disconnect();
      this.#bullConnection.disconnect();
      this.#redis.disconnect();
    })();
    return this.#closing;
  }

  /** Loads every cluster into the hub and makes sure each refresh is scheduled; idempotent. */
  async #resync(): Promise<void> {
    const ids = new Set(await this.#store.ids());
    for (const id of [...this.#expiries.keys(), ...this.#nullClusters]) if (!ids.has(id)) this.#forget(id);
    for (const id of ids) {
      const found = await this.#loadCluster(id);
      if (found) this.#hold(found.cluster, found.current);
    }
    await this.#planRefreshes();
  }

  /**
   * Plans the next refresh of every cluster the service refreshes. Job ids
   * are deterministic, so a planned (or finished, or failed) refresh is left
   * as it is; only a missing one is added.
   */
  async #planRefreshes(): Promise<void> {
    for (const id of await this.#store.ids()) {
      const current = await this.#store.current(id);
      if (current?.refreshAt) await this.#scheduleRefresh({ clusterId: id, seq: current.seq }, current.refreshAt.getTime() - Date.now());
    }
  }

  /**
   * Plans a refresh, then takes it back if the cluster was deleted meanwhile:
   * the deleter removed the jobs it could see, and this one may have come
   * after, which would leave a job of a deleted cluster in Redis.
   */
  async #scheduleRefresh(job: RefreshJob, delayMs: number): Promise<void> {
    await this.#refresh.schedule(job, delayMs);
    if (!(await this.#store.get(job.clusterId))) await this.#refresh.remove(job);
  }

  async #loadCluster(clusterId: string): Promise<{ cluster: SessionCluster; current: CurrentCredentials | undefined } | undefined> {
    const record = await this.#store.get(clusterId);
    const secret = record && (await this.#store.secret(clusterId));
    if (!record || !secret) return undefined;
    const stored = await this.#store.current(clusterId);
    const current = stored ? { seq: stored.seq, credentials: stored.credentials, expiresAt: stored.expiresAt, ...(stored.refreshAt ? { refreshAt: stored.refreshAt } : {}) } : undefined;
    if (current) this.#expiries.set(clusterId, current.expiresAt);
    else this.#nullClusters.add(clusterId);
    return { cluster: { id: clusterId, verifier: record.verifier, delivery: record.delivery, environ: secret.environ, region: record.region }, current };
  }

  #hold(cluster: SessionCluster, current: CurrentCredentials | undefined): void {
    if (!this.hub.hasCluster(cluster.id)) this.hub.addCluster(cluster);
    if (current) {
      this.hub.setCredentials(cluster.id, current).catch((err: unknown) => this.#logger.error({ clusterId: cluster.id, reason: reason(err) }, 'credentials push failed'));
    }
  }

  #forget(clusterId: string): void {
    this.#expiries.delete(clusterId);
    this.#nullClusters.delete(clusterId);
    this.hub.removeCluster(clusterId);
  }

  #onBusMessage(message: BusMessage): void {
    const failed = (err: unknown): void => this.#logger.error({ type: message.type, reason: reason(err) }, 'handling a replica message failed');
    switch (message.type) {
      case 'created':
      case 'credentials':
        this.#loadCluster(message.clusterId).then((found) => found && this.#hold(found.cluster, found.current)).catch(failed);
        return;
      case 'revoked':
        this.#forget(message.clusterId);
        for (const run of this.#runs.values()) if (run.clusterId === message.clusterId) run.revoked();
        return;
      case 'run':
        this.#dispatch(message).catch(failed);
        return;
      case 'dispatched':
        this.#runs.get(message.requestId)?.dispatched(message.replicaId, message.tasks, Date.now());
        return;
      case 'task':
        for (const run of this.#runs.values()) if (run.frame(message.clusterId, message.agentId, message.message)) return;
        return;
    }
  }

  #relayTaskFrame(clusterId: string, agentId: string, message: Output | Exit): void {
    this.#bus.publish({ type: 'task', clusterId, agentId, message }).catch((err: unknown) => {
      this.#logger.error({ clusterId, agentId, reason: reason(err) }, 'could not relay a task frame');
    });
  }

  async #dispatch(message: Extract<BusMessage, { type: 'run' }>): Promise<void> {
    const { env, cwd, timeoutMs, onRefresh } = message.options;
    await this.hub.dispatch(message.clusterId, message.argv, {
      ...(env ? { env } : {}),
      ...(cwd ? { cwd } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(onRefresh ? { onRefresh: onRefresh as OnRefresh } : {}),
    }, (tasks) => this.#bus.publish({ type: 'dispatched', requestId: message.requestId, replicaId: this.replicaId, tasks }));
  }

  async #checkRuns(): Promise<void> {
    if (this.#runs.size === 0 || !this.#presence) return;
    try {
      const live = new Set((await this.#presence.liveReplicas()).map((r) => r.replicaId));
      for (const run of this.#runs.values()) {
        const agents = new Set((await this.#presence.agentsOf(run.clusterId)).map((a) => a.agentId));
        run.check(live, agents, Date.now());
      }
    } catch (err) {
      this.#logger.warn({ reason: reason(err) }, 'could not check runs in progress');
    }
  }

  async #mint(minter: Minter): Promise<Minted> {
    try {
      const minted = await minter.mint();
      this.#metrics.stsCall('success');
      return minted;
    } catch (err) {
      this.#metrics.stsCall('failure');
      throw err;
    }
  }

  async #createCluster(request: CreateClusterRequest): Promise<unknown> {
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
    const id = `c-${randomBytes(6).toString('hex')}`;
    const durationSeconds = request.durationSeconds ?? DEFAULT_DURATION_SECONDS;
    let minted: Minted | null = null;
    if (spec.kind === 'role') {
      const minter = createMinter(spec, { clusterId: id, durationSeconds, region: plan.region, logger: this.#logger });
      if (minter) minted = await this.#mint(minter);
    } else if (request.forwardedCredentials) {
      const { expiration, ...credentials } = request.forwardedCredentials;
      minted = { credentials: { ...credentials, expiration }, expiresAt: new Date(expiration), source: 'passthrough' };
      if (minted.expiresAt.getTime() <= Date.now()) throw new CredfwdError('CONFIG_INVALID', 'the forwarded credentials have expired', 'log in again on the launcher');
    }
    const refreshAt = spec.kind === 'role' && minted
      ? new Date(Date.now() + nextRefreshDelay((minted.expiresAt.getTime() - Date.now()) / 1000, Math.random, request.refreshIntervalSeconds) * 1000)
      : null;
    const token = createJoinToken();
    const record: PublicClusterRecord = {
      id,
      mode: spec.kind,
      delivery: plan.delivery,
      region: plan.region,
      durationSeconds,
      refreshIntervalSeconds: request.refreshIntervalSeconds ?? null,
      leaseSeconds: request.leaseSeconds === undefined ? DEFAULT_LEASE_SECONDS : request.leaseSeconds,
      verifier: tokenVerifier(token),
      createdAt: new Date().toISOString(),
    };
    const current: StoredCredentials | null = minted ? { seq: await this.#store.nextSeq(), credentials: minted.credentials, expiresAt: minted.expiresAt, refreshAt } : null;
    await this.#store.create(record, { spec, environ: plan.environ }, current);
    if (current && refreshAt) {
      await this.#scheduleRefresh({ clusterId: id, seq: current.seq }, refreshAt.getTime() - Date.now());
      await this.#store.saveRefreshStatus(id, { state: 'scheduled', lastRefreshAt: new Date().toISOString(), nextRefreshAt: refreshAt.toISOString(), consecutiveFailures: 0, lastError: null });
    }
    const found = await this.#loadCluster(id);
    if (found) this.#hold(found.cluster, found.current);
    await this.#bus.publish({ type: 'created', clusterId: id });
    // Replicas behind one load balancer share one public address: list it once.
    const addresses = [...new Set((await this.#presence?.liveReplicas() ?? []).map((r) => r.address))];
    this.#logger.info({ clusterId: id, mode: spec.kind, leaseSeconds: record.leaseSeconds, expiresAt: minted?.expiresAt.toISOString(), region: plan.region, environ: redactEnviron(plan.environ) }, 'cluster created');
    return {
      id,
      mode: spec.kind,
      delivery: plan.delivery,
      // A secret: it holds the join token, which is not kept anywhere after this answer.
      joinString: formatJoinString({ addresses: addresses.length > 0 ? addresses : [this.address], clusterId: id, token, pin: this.pin }),
      expiresAt: minted?.expiresAt.toISOString() ?? null,
      lease: await this.#lease(id, record.leaseSeconds),
    };
  }

  /** A cluster's lease as the admin API shows it: null for a kept cluster. */
  async #lease(clusterId: string, seconds: number | null): Promise<{ seconds: number; expiresAt: string | null } | null> {
    if (seconds === null) return null;
    return { seconds, expiresAt: (await this.#store.leaseExpiry(clusterId))?.toISOString() ?? null };
  }

  async #describe(clusterId: string): Promise<unknown> {
    const record = await this.#store.get(clusterId);
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted; list clusters with GET /v1/clusters');
    const current = await this.#store.current(clusterId);
    const refresh = await this.#store.refreshStatus(clusterId);
    const agents = await this.#presence?.agentsOf(clusterId) ?? [];
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

  async #run(clusterId: string, request: RunRequest): Promise<WorkerResult[]> {
    if (!(await this.#store.get(clusterId))) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted');
    if (request.env) checkEnvironSize(request.env, 'the task env');
    const replicas = await this.#presence?.liveReplicas() ?? [];
    const requestId = randomUUID();
    const run = new ClusterRun(requestId, clusterId, replicas.map((r) => r.replicaId), Date.now());
    this.#runs.set(requestId, run);
    try {
      const { argv, ...options } = request;
      await this.#bus.publish({ type: 'run', requestId, clusterId, argv, options });
      return await run.done;
    } finally {
      this.#runs.delete(requestId);
    }
  }

  async #refreshNow(clusterId: string): Promise<void> {
    const current = await this.#store.current(clusterId);
    const record = await this.#store.get(clusterId);
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted');
    if (record.mode !== 'role' || !current) throw new CredfwdError('USAGE', `cluster ${clusterId} is not refreshed by the service`, 'only role clusters are; launch a forward cluster again for new credentials');
    await this.#refresh.runNow({ clusterId, seq: current.seq });
  }

  async #deleteCluster(clusterId: string): Promise<void> {
    const deleted = await this.#store.delete(clusterId);
    if (!deleted) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted already, or its lease lapsed');
    await this.#cleanUpDeleted(clusterId, deleted);
    this.#logger.info({ clusterId }, 'cluster deleted');
  }

  /** After a deletion (by hand or by lapse): no refresh job left, agents revoked on every replica. */
  async #cleanUpDeleted(clusterId: string, deleted: DeletedCluster): Promise<void> {
    this.#forget(clusterId);
    if (deleted.seq !== undefined) await this.#refresh.remove({ clusterId, seq: deleted.seq });
    await this.#bus.publish({ type: 'revoked', clusterId });
  }

  async #renewLease(clusterId: string): Promise<unknown> {
    const record = await this.#store.get(clusterId);
    const gone = (): CredfwdError => new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'its lease lapsed or it was deleted; its agents were revoked');
    if (!record) throw gone();
    if (record.leaseSeconds === null) return null;
    const expiresAt = await this.#store.renewLease(clusterId, record.leaseSeconds);
    if (!expiresAt) throw gone();
    return { seconds: record.leaseSeconds, expiresAt: expiresAt.toISOString() };
  }

  /** One BullMQ refresh job: mints once, stores, schedules the next, then tells every replica. */
  async #refreshJob({ clusterId, seq }: RefreshJob): Promise<void> {
    const current = await this.#store.current(clusterId);
    const secret = await this.#store.secret(clusterId);
    if (!current || !secret || secret.spec.kind !== 'role') return;
    if (current.seq !== seq) {
      // Already done, by a replica that may have died before planning the next one: plan it (a no-op if it exists).
      if (current.seq > seq && current.refreshAt) await this.#scheduleRefresh({ clusterId, seq: current.seq }, current.refreshAt.getTime() - Date.now());
      return;
    }
    const record = await this.#store.get(clusterId);
    if (!record) return;
    const minter = createMinter(secret.spec, { clusterId, durationSeconds: record.durationSeconds, region: record.region, logger: this.#logger });
    if (!minter) return;
    let minted: Minted;
    try {
      minted = await this.#mint(minter);
    } catch (err) {
      // Deleted while minting: the job completes (and is removed) rather than being retried or kept as failed.
      if (!(await this.#store.get(clusterId))) return;
      await this.#refreshFailed(clusterId, err);
      throw err;
    }
    const delaySeconds = nextRefreshDelay((minted.expiresAt.getTime() - Date.now()) / 1000, Math.random, record.refreshIntervalSeconds ?? undefined);
    const refreshAt = new Date(Date.now() + delaySeconds * 1000);
    const next = await this.#store.nextSeq();
    if (!(await this.#store.saveCurrent(clusterId, { seq: next, credentials: minted.credentials, expiresAt: minted.expiresAt, refreshAt }))) return;
    await this.#scheduleRefresh({ clusterId, seq: next }, delaySeconds * 1000);
    await this.#store.saveRefreshStatus(clusterId, { state: 'scheduled', lastRefreshAt: new Date().toISOString(), nextRefreshAt: refreshAt.toISOString(), consecutiveFailures: 0, lastError: null });
    this.#metrics.refresh('success');
    this.#logger.info({ clusterId, seq: next, expiresAt: minted.expiresAt.toISOString() }, 'credentials refreshed');
    await this.#bus.publish({ type: 'credentials', clusterId, seq: next });
  }

  async #refreshFailed(clusterId: string, err: unknown): Promise<void> {
    this.#metrics.refresh('failure');
    const error = refreshErrorOf(err, new Date());
    const previous = await this.#store.refreshStatus(clusterId);
    const status: StoredRefreshStatus = {
      state: error.retryable ? 'backing-off' : 'needs-attention',
      lastRefreshAt: previous?.lastRefreshAt ?? null,
      nextRefreshAt: null,
      consecutiveFailures: (previous?.consecutiveFailures ?? 0) + 1,
      lastError: { ...error, at: error.at.toISOString() },
    };
    await this.#store.saveRefreshStatus(clusterId, status);
    this.#logger.error({ clusterId, code: error.code, reason: error.message, retryable: error.retryable, attempt: status.consecutiveFailures }, 'credential refresh failed; current credentials stay in use until they expire');
  }

  async #redisReachable(): Promise<boolean> {
    if (this.#redis.status !== 'ready') return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.#redis.ping(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('PING timed out')), HEALTH_PING_MS); }),
      ]);
      return answer === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
