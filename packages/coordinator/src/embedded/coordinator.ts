import { EventEmitter } from 'node:events';
import {
  CredfwdError,
  checkEnvironSize,
  formatJoinString,
  redactEnviron,
  type DeliveryMode,
  type Logger,
} from '@credfwd/shared';
import {
  AgentHub,
  DEFAULT_DURATION_SECONDS,
  RefreshScheduler,
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
  readonly #clusters = new Map<string, { record: ClusterRecord; refresh: RefreshScheduler | undefined }>();
  #seq = 0;

  private constructor(hub: AgentHub, addresses: { address: string; localAddress: string }, pin: string, logger: Logger) {
    super();
    this.hub = hub;
    this.address = addresses.address;
    this.localAddress = addresses.localAddress;
    this.pin = pin;
    this.#logger = logger;
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
    this.hub.addCluster({ id, verifier, delivery, environ, region });
    const refresh = minter && minted ? new RefreshScheduler({
      clusterId: id,
      logger: this.#logger,
      mint: () => minter.mint(),
      publish: async (next, refreshAt) => {
        const seq = ++this.#seq;
        await this.hub.setCredentials(id, { seq, credentials: next.credentials, expiresAt: next.expiresAt, refreshAt });
        this.emit('refreshed', id, seq, next.expiresAt);
      },
      onFailure: (error) => this.emit('refresh-failed', id, error),
    }, options.refreshIntervalSeconds ? { intervalSeconds: options.refreshIntervalSeconds } : {}) : undefined;
    this.#clusters.set(id, { record, refresh });
    if (refresh && minted) await refresh.start(minted);
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
    if (!this.#clusters.has(clusterId)) {
      return Promise.reject(new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed'));
    }
    // Refused here, before any agent is sent a frame too large for it.
    if (options?.env) {
      try {
        checkEnvironSize(options.env, 'the task env');
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.hub.run(clusterId, argv, options);
  }

  /** Revokes a cluster: its agents are told to stop and its join token stops working. */
  closeCluster(clusterId: string): void {
    this.#clusters.get(clusterId)?.refresh?.close();
    this.#clusters.delete(clusterId);
    this.hub.removeCluster(clusterId);
    this.#logger.info({ clusterId }, 'cluster closed');
  }

  /** Refreshes a cluster's credentials now (see {@link RefreshScheduler.refreshNow}); a no-op in null mode. */
  async refresh(clusterId: string): Promise<void> {
    const entry = this.#clusters.get(clusterId);
    if (!entry) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed');
    await entry.refresh?.refreshNow();
  }

  /** A cluster's agents and the state of its credentials. */
  status(clusterId: string): ClusterStatus {
    const entry = this.#clusters.get(clusterId);
    if (!entry) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been closed');
    return {
      id: clusterId,
      mode: entry.record.spec.kind,
      delivery: entry.record.delivery,
      agents: this.hub.agents(clusterId),
      refresh: entry.refresh?.status(),
    };
  }

  /** Closes every cluster and stops listening. */
  async close(): Promise<void> {
    for (const id of [...this.#clusters.keys()]) this.closeCluster(id);
    await this.hub.close();
  }
}
