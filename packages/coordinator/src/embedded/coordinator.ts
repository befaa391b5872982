import { EventEmitter } from 'node:events';
import {
  CredfwdError,
  errorMessage,
  formatJoinString,
  redactEnviron,
  type DeliveryMode,
  type Logger,
} from '@credfwd/shared';
import {
  AgentHub,
  ClusterLifecycle,
  DEFAULT_DURATION_SECONDS,
  createMinter,
  createSelfSignedIdentity,
  isAnyAddress,
  listenForAgents,
  openCluster,
  planCluster,
  splitHostPort,
  type AdmissionLimits,
  type AgentStatus,
  type ClusterOptions,
  type CredentialsSpec,
  type Minted,
  type RefreshError,
  type RefreshStatus,
  type RunOptions,
  type TlsIdentity,
  type WorkerResult,
} from '../core/index.ts';
import { DirectRoute } from './direct-route.ts';
import { MemoryClusterRecords, type KeptCluster } from './memory-cluster-records.ts';
import { TimerRefresh } from './timer-refresh.ts';

/** A cluster registered with a coordinator. */
export interface ClusterRecord {
  id: string;
  spec: CredentialsSpec;
  delivery: DeliveryMode;
  region: string | null;
  /** A secret: hand it to agents through CREDFWD_JOIN or a file, never argv. */
  joinString: string;
  /** The first credentials, or null in null mode. */
  minted: Minted | null;
}

export interface CoordinatorOptions {
  logger: Logger;
  /** `HOST:PORT` to listen on; 127.0.0.1 on a free port by default. */
  listen?: string;
  /** `HOST:PORT` agents should dial, when it differs from the listen address. */
  publicAddress?: string;
  tls?: TlsIdentity;
  heartbeatIntervalMs?: number;
  handshakeTimeoutMs?: number;
  /** Limits on unauthenticated traffic to the agent port; see {@link AdmissionLimits} for the defaults. */
  limits?: Partial<AdmissionLimits>;
}

/** What `status()` reports of a cluster. */
export interface ClusterStatus {
  id: string;
  mode: CredentialsSpec['kind'];
  delivery: DeliveryMode;
  agents: AgentStatus[];
  /** Undefined in null mode. */
  refresh: RefreshStatus | undefined;
}

/** Events a coordinator emits about its clusters. */
export type CoordinatorEvents = {
  /** New credentials were minted and pushed to the cluster's agents. */
  refreshed: [clusterId: string, seq: number, expiresAt: Date];
  /** A refresh failed; the current credentials stay in use until they expire. */
  'refresh-failed': [clusterId: string, error: RefreshError];
};

/** A cluster as the coordinator keeps it: its record and, in memory only, its minter. */
interface EmbeddedCluster extends KeptCluster {
  record: ClusterRecord;
}

/**
 * The embedded coordinator: one process holding the agent hub and the
 * clusters it serves, minting from the launcher's identity.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly hub: AgentHub;
  /** `HOST:PORT` agents dial. */
  readonly address: string;
  /** `HOST:PORT` at which this machine reaches the agent port: what a launch backend's tunnel forwards to. */
  readonly localAddress: string;
  readonly pin: string;
  readonly #logger: Logger;
  readonly #records = new MemoryClusterRecords<EmbeddedCluster>();
  readonly #timer: TimerRefresh;
  readonly #lifecycle: ClusterLifecycle<EmbeddedCluster>;

  private constructor(hub: AgentHub, addresses: { address: string; localAddress: string }, pin: string, logger: Logger) {
    super();
    this.hub = hub;
    this.address = addresses.address;
    this.localAddress = addresses.localAddress;
    this.pin = pin;
    this.#logger = logger;
    this.#timer = new TimerRefresh((job) => this.#lifecycle.refresh(job));
    this.#lifecycle = new ClusterLifecycle({
      records: this.#records,
      timer: this.#timer,
      route: new DirectRoute(hub),
      logger,
      onRefreshed: ({ id }, current) => this.emit('refreshed', id, current.seq, current.expiresAt),
      onRefreshFailed: ({ id }, error) => this.emit('refresh-failed', id, error),
    });
  }

  /** Makes (or takes) the TLS identity and starts listening for agents. */
  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const listen = splitHostPort(options.listen ?? '127.0.0.1:0', 'listen address');
    if (options.publicAddress !== undefined) splitHostPort(options.publicAddress, 'public address');
    // Which of this machine's addresses remote agents can reach (interfaces, NAT) is not ours to guess, and a
    // join string naming 127.0.0.1 would send them to their own loopback: the caller says.
    if (options.publicAddress === undefined && isAnyAddress(listen.host)) {
      throw new CredfwdError('USAGE', `listen address ${options.listen} is every interface, which agents cannot dial`, 'pass --public-address HOST:PORT (publicAddress in the API): the address remote agents reach this machine at');
    }
    const tls = options.tls ?? (await createSelfSignedIdentity());
    const hub = new AgentHub({
      tls,
      logger: options.logger,
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
      ...(options.handshakeTimeoutMs ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    let localAddress;
    try {
      localAddress = await listenForAgents(hub, listen);
    } catch (err) {
      await hub.close();
      throw err;
    }
    const address = options.publicAddress ?? localAddress;
    options.logger.info({ address, pin: tls.pin }, 'coordinator listening');
    return new Coordinator(hub, { address, localAddress }, tls.pin, options.logger);
  }

  /**
   * Validates a cluster, mints its first credentials (one STS call, however
   * many workers will join) and opens it to agents.
   */
  async createCluster(options: ClusterOptions): Promise<ClusterRecord> {
    const { spec, delivery, environ, region } = planCluster(options);
    const { id, token, verifier } = openCluster();
    const minter = createMinter(spec, {
      clusterId: id,
      durationSeconds: options.durationSeconds ?? DEFAULT_DURATION_SECONDS,
      region,
      logger: this.#logger,
      ...(options.launcher ? { launcher: options.launcher } : {}),
      // Without a principal named, the launcher's own ARN: it is whose identity the cluster's sessions carry.
      ...(options.principal !== undefined ? { principal: options.principal } : { attributeToLauncher: true }),
    });
    const minted = minter ? await minter.mint() : null;
    const record: ClusterRecord = {
      id,
      spec,
      delivery,
      region,
      joinString: formatJoinString({ addresses: [this.address], clusterId: id, token, pin: this.pin }),
      minted,
    };
    const kept: EmbeddedCluster = { id, record, minter, intervalSeconds: options.refreshIntervalSeconds || undefined };
    const current = await this.#lifecycle.create({ record: kept, session: { id, verifier, delivery, environ, region }, first: minted, refreshed: minter !== null, intervalSeconds: kept.intervalSeconds });
    if (current) this.emit('refreshed', id, current.seq, current.expiresAt);
    this.#logger.info({
      clusterId: id,
      mode: spec.kind,
      source: minted?.source,
      expiresAt: minted?.expiresAt.toISOString(),
      region,
      environ: redactEnviron(environ),
    }, 'cluster created');
    return record;
  }

  /** Runs argv on every agent of a cluster that holds current credentials. */
  run(clusterId: string, argv: string[], options?: RunOptions): Promise<WorkerResult[]> {
    if (!this.#records.get(clusterId)) {
      return Promise.reject(new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed'));
    }
    return this.#lifecycle.run(clusterId, argv, options);
  }

  /** Revokes a cluster: its agents are told to stop and its join token stops working. */
  closeCluster(clusterId: string): void {
    void this.#close(clusterId);
  }

  // The record goes at once (the records answer in the same tick); the timer and the agents follow.
  async #close(clusterId: string): Promise<void> {
    const closing = this.#lifecycle.delete(clusterId);
    this.#logger.info({ clusterId }, 'cluster closed');
    await closing.catch((err: unknown) => this.#logger.error({ clusterId, reason: errorMessage(err) }, 'closing the cluster failed'));
  }

  /**
   * Refreshes a cluster's credentials now, sharing a refresh in flight; the
   * way to resume after `needs-attention` once a person has fixed the cause.
   * Rejects with the refresh's error. A no-op in null mode.
   */
  async refresh(clusterId: string): Promise<void> {
    if (!this.#records.get(clusterId)) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed');
    await this.#lifecycle.refreshNow(clusterId);
  }

  /** A cluster's agents and the state of its credentials. */
  status(clusterId: string): ClusterStatus {
    const record = this.#records.get(clusterId)?.record;
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed');
    return {
      id: clusterId,
      mode: record.spec.kind,
      delivery: record.delivery,
      agents: this.hub.agents(clusterId),
      refresh: this.#records.statusOf(clusterId),
    };
  }

  /** Closes every cluster and stops listening. */
  async close(): Promise<void> {
    await Promise.all(this.#records.ids().map((id) => this.#close(id)));
    this.#timer.close();
    await this.hub.close();
  }
}
