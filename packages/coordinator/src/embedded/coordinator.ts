import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import {
  CredfwdError,
  checkEnvironSize,
  createJoinToken,
  formatJoinString,
  redactEnviron,
  tokenVerifier,
  validateEnviron,
  type DeliveryMode,
  type Logger,
} from '@credfwd/shared';
import { AgentHub, type AdmissionLimits, type AgentStatus, type RunOptions } from './agent-hub.ts';
import { parseCredentialsOption, type CredentialsOption, type CredentialsSpec } from './credentials-spec.ts';
import { createMinter, type Minted } from './minter.ts';
import { RefreshScheduler, type RefreshError, type RefreshStatus } from './refresh-scheduler.ts';
import type { WorkerResult } from './task-dispatch.ts';
import { createSelfSignedIdentity, type TlsIdentity } from './tls-identity.ts';

/** What a cluster is asked to be. */
export interface ClusterOptions {
  credentials?: CredentialsOption;
  environ?: Record<string, string>;
  /** Region for STS and for workers' AWS_REGION / AWS_DEFAULT_REGION; the launcher's when absent. */
  region?: string;
  /** Requested credential lifetime; STS caps it per action. */
  durationSeconds?: number;
  /** How agents hand credentials to workloads: `env` (default) or `endpoint` (a loopback container-credentials endpoint). */
  delivery?: 'env' | 'endpoint';
  /** Refresh at least this often; by default at half the remaining life. */
  refreshIntervalSeconds?: number;
  /** Launcher identity; the SDK default chain when absent. */
  launcher?: AwsCredentialIdentityProvider;
}

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

export const DEFAULT_DURATION_SECONDS = 3600;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** Listen hosts that mean every interface rather than an address to dial. */
const ANY_ADDRESS = new Set(['0.0.0.0', '::']);

/** Parses `HOST:PORT` (IPv6 in brackets), or throws USAGE naming `what`. */
export function splitHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match?.[1] || port > 65535) throw new CredfwdError('USAGE', `${what} ${JSON.stringify(text)} is not HOST:PORT`, 'for example 127.0.0.1:0 or 0.0.0.0:7443');
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function resolveRegion(region: string | undefined): string | null {
  const chosen = region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? null;
  if (chosen !== null && !REGION.test(chosen)) {
    throw new CredfwdError('CONFIG_INVALID', `region ${JSON.stringify(chosen.slice(0, 64))} is not an AWS region`, 'use a region name such as us-east-1 or eu-west-2');
  }
  return chosen;
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

/** A cluster's options, validated. */
export interface ClusterPlan {
  spec: CredentialsSpec;
  delivery: DeliveryMode;
  environ: Record<string, string>;
  region: string | null;
}

/** Validates cluster options without side effects, so bad input fails before anything starts. */
export function planCluster(options: ClusterOptions): ClusterPlan {
  const spec = parseCredentialsOption(options.credentials);
  if (options.delivery !== undefined && options.delivery !== 'env' && options.delivery !== 'endpoint') {
    throw new CredfwdError('CONFIG_INVALID', `delivery ${JSON.stringify(String(options.delivery).slice(0, 40))} is not a delivery mode`, 'use env or endpoint');
  }
  const interval = options.refreshIntervalSeconds;
  if (interval !== undefined && (!Number.isInteger(interval) || interval < 1)) {
    throw new CredfwdError('CONFIG_INVALID', `refresh interval ${interval} is not a whole number of seconds`, 'use 1 s or more, for example 15m');
  }
  // Silently dropping a delivery the caller asked for would look like success.
  if (spec.kind === 'none' && options.delivery !== undefined) {
    throw new CredfwdError('CONFIG_INVALID', `delivery ${options.delivery} does not apply: credentials none forwards nothing`, 'drop the delivery option, or forward credentials (forward or role:<role ARN>)');
  }
  const delivery: DeliveryMode = spec.kind === 'none' ? 'none' : (options.delivery ?? 'env');
  const environ = options.environ ?? {};
  validateEnviron(environ, delivery);
  return { spec, delivery, environ, region: resolveRegion(options.region) };
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
  readonly pin: string;
  readonly #logger: Logger;
  readonly #clusters = new Map<string, { record: ClusterRecord; refresh: RefreshScheduler | undefined }>();
  #seq = 0;

  private constructor(hub: AgentHub, address: string, pin: string, logger: Logger) {
    super();
    this.hub = hub;
    this.address = address;
    this.pin = pin;
    this.#logger = logger;
  }

  /** Makes (or takes) the TLS identity and starts listening for agents. */
  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const listen = splitHostPort(options.listen ?? '127.0.0.1:0', 'listen address');
    if (options.publicAddress !== undefined) splitHostPort(options.publicAddress, 'public address');
    // Which of this machine's addresses remote agents can reach (interfaces, NAT) is not ours to guess, and a
    // join string naming 127.0.0.1 would send them to their own loopback: the caller says.
    if (options.publicAddress === undefined && ANY_ADDRESS.has(listen.host)) {
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
    let bound;
    try {
      bound = await hub.listen(listen.host, listen.port);
    } catch (cause) {
      await hub.close();
      throw new CredfwdError('CONFIG_INVALID', `cannot listen on ${listen.host}:${listen.port}: ${cause instanceof Error ? cause.message : String(cause)}`, 'choose another --listen address or port', { cause });
    }
    const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    const address = options.publicAddress ?? `${host}:${bound.port}`;
    options.logger.info({ address, pin: tls.pin }, 'coordinator listening');
    return new Coordinator(hub, address, tls.pin, options.logger);
  }

  /**
   * Validates a cluster, mints its first credentials (one STS call, however
   * many workers will join) and opens it to agents.
   */
  async createCluster(options: ClusterOptions): Promise<ClusterRecord> {
    const { spec, delivery, environ, region } = planCluster(options);
    const id = `c-${randomBytes(6).toString('hex')}`;
    const minter = createMinter(spec, {
      clusterId: id,
      durationSeconds: options.durationSeconds ?? DEFAULT_DURATION_SECONDS,
      region,
      logger: this.#logger,
      ...(options.launcher ? { launcher: options.launcher } : {}),
    });
    const minted = minter ? await minter.mint() : null;
    const token = createJoinToken();
    const record: ClusterRecord = {
      id,
      spec,
      delivery,
      region,
      joinString: formatJoinString({ addresses: [this.address], clusterId: id, token, pin: this.pin }),
      minted,
    };
    this.hub.addCluster({ id, verifier: tokenVerifier(token), delivery, environ, region });
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
