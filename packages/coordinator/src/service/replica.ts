import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { errorMessage, isCredfwdError, type Logger } from '@credfwd/shared';
import { AgentHub, ClusterLifecycle, listenForAgents, openAuditLog, splitHostPort, type AdmissionLimits, type AuditLog, type TlsIdentity } from '../core/index.ts';
import { createAdminApi } from './admin-api.ts';
import { ClusterAdmin } from './cluster-admin.ts';
import { ClusterStore } from './cluster-store.ts';
import { Governance } from './governance.ts';
import { HeldClusters } from './held-clusters.ts';
import { LeaseSweep } from './lease-sweep.ts';
import { PubSubRoute } from './pubsub-route.ts';
import { QueuedRefresh } from './queued-refresh.ts';
import { RedisClusterRecords, type ServiceCluster } from './redis-cluster-records.ts';
import { RedisKeys } from './redis-keys.ts';
import { redisReachable, redisUnavailable } from './redis-health.ts';
import { ReplicaBus, type BusMessage } from './replica-bus.ts';
import { ReplicaMetrics } from './replica-metrics.ts';
import { ReplicaPresence } from './replica-presence.ts';
import { refreshAccounting } from './refresh-accounting.ts';
import { ReplicaRuns } from './replica-runs.ts';
import type { ReplicaSecrets } from './replica-secrets.ts';
import { loadSharedTlsIdentity } from './shared-tls-identity.ts';

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
  /** Policy file (JSON or YAML) of principals and rules; without one every principal may do everything. */
  policyFile?: string;
  /** Where audit lines go; stderr when absent. The replica closes it. */
  audit?: AuditLog;
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
  readonly #bus: ReplicaBus;
  readonly #held: HeldClusters;
  readonly #refresh: QueuedRefresh;
  readonly #lifecycle: ClusterLifecycle<ServiceCluster>;
  readonly #runs: ReplicaRuns;
  readonly #admin: ClusterAdmin;
  readonly #leaseSweep: LeaseSweep;
  readonly #governance: Governance;
  readonly #audit: AuditLog;
  #presence: ReplicaPresence | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: ReplicaOptions, redis: Redis, tls: TlsIdentity, governance: Governance) {
    this.#options = options;
    const logger = options.logger;
    this.#governance = governance;
    const audit = options.audit ?? openAuditLog(undefined);
    this.#audit = audit;
    this.#logger = logger;
    this.#redis = redis;
    this.pin = tls.pin;
    const keys = new RedisKeys(options.redisPrefix ?? 'credfwd');
    this.#keys = keys;
    this.#subscriber = redis.duplicate();
    // BullMQ blocks on its connections and must never give up a command: its own, with no retry limit.
    this.#bullConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    const store = new ClusterStore(redis, keys, options.secrets.stateKey);
    this.#bus = new ReplicaBus({ publisher: redis, subscriber: this.#subscriber, channel: keys.events, stateKey: options.secrets.stateKey, logger });
    const metrics = new ReplicaMetrics({
      connectedAgents: () => this.#held.connectedAgents(),
      // Metrics must answer while Redis is away: the gauge is left out then.
      clusters: () => store.count().catch(() => undefined),
      earliestExpirySeconds: () => this.#held.earliestExpirySeconds(Date.now()),
    });
    this.hub = new AgentHub({
      tls,
      logger,
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      onRequest: createAdminApi({
        governance,
        replicaId: this.replicaId,
        logger,
        createCluster: (call, request) => this.#admin.create(call, request),
        listClusters: (call) => this.#admin.list(call),
        showCluster: (call, id) => this.#admin.describe(call, id),
        runOnCluster: (call, id, request) => this.#admin.run(call, id, request),
        refreshCluster: (call, id) => this.#admin.refreshNow(call, id),
        deleteCluster: (call, id) => this.#admin.delete(call, id),
        revokeCluster: (call, id, allSessions) => this.#admin.revoke(call, id, allSessions),
        renewLease: (call, id) => this.#admin.renewLease(call, id),
        refused: ({ requestId }, code) => audit.record({ action: 'denied', outcome: 'denied', principal: null, requestId, code }),
        metrics: () => metrics.render(),
        redisReachable: () => redisReachable(this.#redis),
      }),
      loadCluster: (id) => this.#held.load(id),
      onUnclaimedTaskMessage: (clusterId, agentId, message) => this.#runs.relay(clusterId, agentId, message),
    });
    this.#held = new HeldClusters(store, this.hub, logger);
    this.#refresh = new QueuedRefresh({
      store,
      logger,
      connection: this.#bullConnection,
      prefix: keys.bull,
      run: (job) => this.#lifecycle.refresh(job),
      ...(options.refreshSweepMs ? { sweepMs: options.refreshSweepMs } : {}),
    });
    const presence = (): ReplicaPresence | undefined => this.#presence;
    this.#runs = new ReplicaRuns({ replicaId: this.replicaId, hub: this.hub, bus: this.#bus, logger, presence });
    this.#lifecycle = new ClusterLifecycle({
      records: new RedisClusterRecords(store, metrics, logger),
      timer: this.#refresh,
      route: new PubSubRoute(this.#held, this.#bus, this.#runs),
      logger,
      ...refreshAccounting(metrics, audit, logger),
    });
    this.#admin = new ClusterAdmin({ store, lifecycle: this.#lifecycle, metrics, logger, governance, audit, pin: this.pin, address: () => this.address, presence });
    this.hub.on('refused', (code) => metrics.refused(code));
    this.hub.on('agent-ready', (clusterId, agentId, seq) => {
      const remote = this.hub.agent(clusterId, agentId)?.remote ?? '';
      this.#presence?.agentJoined(clusterId, { agentId, remote, ackedSeq: seq }).catch((err: unknown) => logger.warn({ clusterId, agentId, reason: errorMessage(err) }, 'could not register agent in Redis'));
    });
    this.hub.on('agent-gone', (clusterId, agentId) => {
      // A reconnecting agent's old connection closes after its new one is in.
      if (this.hub.agent(clusterId, agentId)) return;
      this.#presence?.agentLeft(clusterId, agentId).catch((err: unknown) => logger.warn({ clusterId, agentId, reason: errorMessage(err) }, 'could not unregister agent in Redis'));
    });
    this.#leaseSweep = new LeaseSweep({
      logger,
      lapsed: () => store.lapsedLeases(100),
      deleteIfLapsed: async (id) => {
        const deleted = await store.delete(id, true);
        if (deleted) {
          await this.#lifecycle.retire(id, deleted);
          // Nobody asked: the service deleted it because its launcher stopped renewing.
          audit.record({ action: 'delete', outcome: 'ok', principal: null, cluster: id, reason: 'its lease lapsed' });
        }
        return deleted;
      },
    }, options.leaseSweepMs);
  }

  /** Connects to Redis, takes the shared TLS identity, listens, and loads every cluster. */
  static async start(options: ReplicaOptions): Promise<Replica> {
    const listen = splitHostPort(options.listen, 'listen address');
    if (options.publicAddress !== undefined) splitHostPort(options.publicAddress, 'public address');
    // Before Redis: a bad policy stops the replica at once, naming the line at fault.
    const governance = new Governance({ ...(options.policyFile !== undefined ? { policyFile: options.policyFile } : {}), adminToken: options.secrets.adminToken, logger: options.logger });
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
      replica = new Replica(options, redis, tls, governance);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    try {
      await replica.#begin(listen);
    } catch (err) {
      await replica.close();
      throw err;
    }
    return replica;
  }

  async #begin(listen: { host: string; port: number }): Promise<void> {
    const localAddress = await listenForAgents(this.hub, listen);
    this.address = this.#options.publicAddress ?? localAddress;
    this.#subscriber.on('error', (err) => this.#logger.warn({ reason: err.message }, 'Redis subscriber error; ioredis reconnects by itself'));
    this.#bullConnection.on('error', (err) => this.#logger.debug({ reason: err.message }, 'Redis (BullMQ) connection error'));
    await this.#bus.start((message) => this.#onBusMessage(message));
    this.#presence = new ReplicaPresence({ redis: this.#redis, keys: this.#keys, replicaId: this.replicaId, address: this.address, logger: this.#logger });
    await this.#presence.start();
    await this.#held.resync();
    // Pub/sub messages sent while Redis was away are lost: after a reconnect, Redis itself is read again.
    this.#redis.on('ready', () => {
      this.#resync().catch((err: unknown) => this.#logger.warn({ reason: errorMessage(err) }, 'resync after Redis reconnect failed'));
    });
    this.#runs.start();
    await this.#refresh.start();
    this.#leaseSweep.start();
    this.#logger.info({ replicaId: this.replicaId, address: this.address, pin: this.pin }, 'replica listening');
  }

  /**
   * Reads the policy file again (SIGHUP). A bad file keeps the policy in
   * force and logs why; clusters are untouched either way. Audited.
   */
  reloadPolicy(): boolean {
    try {
      this.#governance.reload();
      this.#audit.record({ action: 'policy-reload', outcome: 'ok', principal: null });
      this.#logger.warn({ policy: this.#options.policyFile }, 'policy reloaded');
      return true;
    } catch (err) {
      const why = errorMessage(err);
      this.#audit.record({ action: 'policy-reload', outcome: 'failed', principal: null, code: isCredfwdError(err) ? err.code : 'INTERNAL', reason: why });
      this.#logger.error({ reason: why }, 'policy reload failed; the previous policy stays in force');
      return false;
    }
  }

  /** Leaves the service cleanly: agents reconnect to another replica. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#runs.close();
      this.#leaseSweep.close();
      await this.#presence?.close().catch(() => undefined);
      await this.#refresh.close().catch(() => undefined);
      // The clusters live on in the service: agents move to another replica instead of being revoked.
      await this.hub.close({ revoke: false });
      this.#subscriber.disconnect();
      this.#bullConnection.disconnect();
      this.#redis.disconnect();
      this.#audit.close();
    })();
    return this.#closing;
  }

  async #resync(): Promise<void> {
    await this.#held.resync();
    await this.#refresh.planAll();
  }

  #onBusMessage(message: BusMessage): void {
    const failed = (err: unknown): void => this.#logger.error({ type: message.type, reason: errorMessage(err) }, 'handling a replica message failed');
    switch (message.type) {
      case 'created':
      case 'credentials':
        this.#held.hold(message.clusterId).catch(failed);
        return;
      case 'revoked':
        this.#held.forget(message.clusterId);
        this.#runs.revoked(message.clusterId);
        return;
      case 'run':
        this.#runs.dispatch(message).catch(failed);
        return;
      case 'dispatched':
        this.#runs.dispatched(message);
        return;
      case 'task':
        this.#runs.frame(message);
        return;
    }
  }
}
