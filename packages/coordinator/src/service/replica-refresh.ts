import type { ConnectionOptions } from 'bullmq';
import { CredfwdError, errorMessage, type Logger } from '@credfwd/shared';
import {
  createMinter,
  failedRefreshStatus,
  nextRefreshAt,
  refreshErrorOf,
  refreshStatusToJson,
  refreshedStatus,
  type AuditLog,
  type CurrentCredentials,
  type Minted,
  type Minter,
  type RefreshStatus,
} from '../core/index.ts';
import type { ClusterStore, PublicClusterRecord } from './cluster-store.ts';
import { DistributedRefresh, type RefreshJob } from './distributed-refresh.ts';
import type { ReplicaBus } from './replica-bus.ts';
import type { ReplicaMetrics } from './replica-metrics.ts';

/** How often a replica plans every refresh again: see {@link ReplicaRefreshOptions.sweepMs}. */
const REFRESH_SWEEP_MS = 60_000;

export interface ReplicaRefreshOptions {
  store: ClusterStore;
  bus: ReplicaBus;
  metrics: ReplicaMetrics;
  logger: Logger;
  /** Where each scheduled refresh's audit line goes (a forced one is audited by the admin API too, as the request). */
  audit: AuditLog;
  /** BullMQ's own connection and key prefix. */
  connection: ConnectionOptions;
  prefix: string;
  /**
   * How often every cluster's next refresh is planned again: a no-op for
   * refreshes already planned, and the repair for one whose planning a crash
   * cut short.
   */
  sweepMs?: number;
}

/**
 * The service's refresh policy on BullMQ: each refresh of a role cluster is
 * one job that exactly one replica mints, stores as the next sequence number
 * and announces; failures are recorded for `show` and retried by BullMQ.
 */
export class ReplicaRefresh {
  readonly #options: ReplicaRefreshOptions;
  readonly #queue: DistributedRefresh;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: ReplicaRefreshOptions) {
    this.#options = options;
    this.#queue = new DistributedRefresh({ connection: options.connection, prefix: options.prefix, logger: options.logger, refresh: (job) => this.#refresh(job) });
  }

  /** Plans every refresh now and again every sweep. */
  async start(): Promise<void> {
    await this.planAll();
    this.#sweep ??= setInterval(() => {
      this.planAll().catch((err: unknown) => this.#options.logger.warn({ reason: errorMessage(err) }, 'could not plan refreshes'));
    }, this.#options.sweepMs ?? REFRESH_SWEEP_MS);
    this.#sweep.unref();
  }

  /** Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.#queue.close();
  }

  /** Mints, counting the STS call for `/metrics`. */
  async mint(minter: Minter): Promise<Minted> {
    try {
      const minted = await minter.mint();
      this.#options.metrics.stsCall('success');
      return minted;
    } catch (err) {
      this.#options.metrics.stsCall('failure');
      throw err;
    }
  }

  /**
   * Plans the next refresh of every cluster the service refreshes. Job ids
   * are deterministic, so a planned (or finished, or failed) refresh is left
   * as it is; only a missing one is added.
   */
  async planAll(): Promise<void> {
    const { store } = this.#options;
    for (const id of await store.ids()) {
      const current = await store.current(id);
      if (current?.refreshAt) await this.schedule({ clusterId: id, seq: current.seq }, current.refreshAt.getTime() - Date.now());
    }
  }

  /** Plans the first refresh of a new cluster's credentials. */
  async first(clusterId: string, current: CurrentCredentials & { refreshAt: Date }): Promise<void> {
    await this.schedule({ clusterId, seq: current.seq }, current.refreshAt.getTime() - Date.now());
    await this.#options.store.saveRefreshStatus(clusterId, refreshStatusToJson(refreshedStatus(current.expiresAt, new Date(), current.refreshAt)));
  }

  /**
   * Plans a refresh, then takes it back if the cluster was deleted meanwhile:
   * the deleter removed the jobs it could see, and this one may have come
   * after, which would leave a job of a deleted cluster in Redis.
   */
  async schedule(job: RefreshJob, delayMs: number): Promise<void> {
    await this.#queue.schedule(job, delayMs);
    if (!(await this.#options.store.get(job.clusterId))) await this.#queue.remove(job);
  }

  /** Removes the refresh job of a deleted cluster. */
  remove(job: RefreshJob): Promise<void> {
    return this.#queue.remove(job);
  }

  /** Refreshes a role cluster now: how it resumes after needs-attention. */
  async runNow(clusterId: string): Promise<void> {
    const { store } = this.#options;
    const current = await store.current(clusterId);
    const record = await store.get(clusterId);
    if (!record) throw new CredfwdError('CLUSTER_NOT_FOUND', `cluster ${clusterId} does not exist`, 'it may have been deleted');
    if (record.mode !== 'role' || !current) throw new CredfwdError('USAGE', `cluster ${clusterId} is not refreshed by the service`, 'only role clusters are; launch a forward cluster again for new credentials');
    await this.#queue.runNow({ clusterId, seq: current.seq });
  }

  /** One BullMQ refresh job: mints once, stores, schedules the next, then tells every replica. */
  async #refresh({ clusterId, seq }: RefreshJob): Promise<void> {
    const { store, bus, metrics, logger } = this.#options;
    const current = await store.current(clusterId);
    const secret = await store.secret(clusterId);
    if (!current || !secret || secret.spec.kind !== 'role') return;
    if (current.seq !== seq) {
      // Already done, by a replica that may have died before planning the next one: plan it (a no-op if it exists).
      if (current.seq > seq && current.refreshAt) await this.schedule({ clusterId, seq: current.seq }, current.refreshAt.getTime() - Date.now());
      return;
    }
    const record = await store.get(clusterId);
    if (!record) return;
    const minter = createMinter(secret.spec, { clusterId, durationSeconds: record.durationSeconds, region: record.region, logger, ...(record.principal ? { principal: record.principal } : {}) });
    if (!minter) return;
    let minted: Minted;
    try {
      minted = await this.mint(minter);
    } catch (err) {
      // Deleted while minting: the job completes (and is removed) rather than being retried or kept as failed.
      if (!(await store.get(clusterId))) return;
      await this.#failed(record, current, err);
      this.#audited(record, { outcome: 'failed', code: refreshErrorOf(err, new Date()).code, reason: errorMessage(err) });
      throw err;
    }
    const refreshAt = nextRefreshAt(minted.expiresAt, Date.now(), Math.random, record.refreshIntervalSeconds ?? undefined);
    const next = await store.nextSeq();
    const status = refreshStatusToJson(refreshedStatus(minted.expiresAt, new Date(), refreshAt));
    if (!(await store.saveCurrent(clusterId, { seq: next, credentials: minted.credentials, expiresAt: minted.expiresAt, refreshAt }, status))) return;
    await this.schedule({ clusterId, seq: next }, refreshAt.getTime() - Date.now());
    metrics.refresh('success');
    this.#audited(record, { outcome: 'ok' });
    logger.info({ clusterId, seq: next, expiresAt: minted.expiresAt.toISOString() }, 'credentials refreshed');
    await bus.publish({ type: 'credentials', clusterId, seq: next });
  }

  #audited(record: PublicClusterRecord, result: { outcome: 'ok' | 'failed'; code?: string; reason?: string }): void {
    this.#options.audit.record({ action: 'refresh', ...result, principal: record.principal, cluster: record.id, mode: record.mode, roleArn: record.roleArn, scopes: record.scopes, requestId: null });
  }

  async #failed(record: PublicClusterRecord, current: CurrentCredentials, err: unknown): Promise<void> {
    const { store, metrics, logger } = this.#options;
    const clusterId = record.id;
    metrics.refresh('failure');
    const error = refreshErrorOf(err, new Date());
    const recorded = await store.refreshStatus(clusterId);
    // BullMQ plans the retry: when it will be is not known here.
    const status = failedRefreshStatus({
      state: recorded?.state ?? 'scheduled',
      expiresAt: current.expiresAt,
      // Recorded at creation; a cluster whose record was lost got its credentials when it was created.
      lastRefreshAt: new Date(recorded?.lastRefreshAt ?? record.createdAt),
      nextRefreshAt: undefined,
      consecutiveFailures: recorded?.consecutiveFailures ?? 0,
      lastError: undefined,
    } satisfies RefreshStatus, error, undefined);
    await store.saveRefreshStatus(clusterId, refreshStatusToJson(status));
    logger.error({ clusterId, code: error.code, reason: error.message, retryable: error.retryable, attempt: status.consecutiveFailures }, 'credential refresh failed; current credentials stay in use until they expire');
  }
}

