import { CredfwdError, checkEnvironSize, errorMessage, type Logger } from '@credfwd/shared';
import type { AgentRoute } from './agent-route.ts';
import type { SessionCluster } from './agent-session.ts';
import type { ClusterRecords, DeletedRecord, RefreshableCluster } from './cluster-records.ts';
import type { CurrentCredentials } from './credential-push.ts';
import type { Minted } from './minter.ts';
import { backoffDelay, nextRefreshAt } from './refresh-schedule.ts';
import { failedRefreshStatus, refreshErrorOf, refreshedStatus, type RefreshError, type RefreshStatus } from './refresh-status.ts';
import type { RefreshJob, RefreshTimer } from './refresh-timer.ts';
import type { RunOptions } from './task-dispatch.ts';
import type { WorkerResult } from './worker-result.ts';

export interface ClusterLifecycleOptions<R> {
  records: ClusterRecords<R>;
  timer: RefreshTimer;
  route: AgentRoute;
  logger: Logger;
  /** Told of every refresh whose credentials were stored and pushed. */
  onRefreshed?: (record: R, current: CurrentCredentials) => void;
  /** Told of every failed refresh, after it is logged and its status recorded. */
  onRefreshFailed?: (record: R, error: RefreshError) => void;
  now?: () => number;
  random?: () => number;
}

/** A planned and opened cluster, ready to be registered. */
export interface NewCluster<R> {
  record: R;
  /** What its agents join with. */
  session: SessionCluster;
  /** Its first credentials; null in null mode. */
  first: Minted | null;
  /** False when the deployment keeps the first credentials until they expire (forwarded ones in the service). */
  refreshed: boolean;
  /** Refresh at least this often (seconds). */
  intervalSeconds?: number | undefined;
}

/**
 * A cluster's life in any deployment: registered with its first
 * credentials, kept fresh at half life (one mint in flight per cluster;
 * backoff with full jitter on a retryable failure; stopped until asked on one
 * that needs a person, as the EKS Pod Identity Agent does), revoked, and
 * run on. Where records live, who schedules refreshes and how frames reach
 * agents are the deployment's, behind {@link ClusterRecords},
 * {@link RefreshTimer} and {@link AgentRoute}.
 */
export class ClusterLifecycle<R> {
  readonly #records: ClusterRecords<R>;
  readonly #timer: RefreshTimer;
  readonly #route: AgentRoute;
  readonly #logger: Logger;
  readonly #onRefreshed: ClusterLifecycleOptions<R>['onRefreshed'];
  readonly #onRefreshFailed: ClusterLifecycleOptions<R>['onRefreshFailed'];
  readonly #now: () => number;
  readonly #random: () => number;
  /** Refreshes in flight, by cluster and seq. */
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(options: ClusterLifecycleOptions<R>) {
    this.#records = options.records;
    this.#timer = options.timer;
    this.#route = options.route;
    this.#logger = options.logger;
    this.#onRefreshed = options.onRefreshed;
    this.#onRefreshFailed = options.onRefreshFailed;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Stores a cluster with its first credentials, plans their refresh and opens it to agents; its current credentials. */
  async create(cluster: NewCluster<R>): Promise<CurrentCredentials | null> {
    const { session, first } = cluster;
    const now = this.#now();
    const refreshAt = first && cluster.refreshed ? nextRefreshAt(first.expiresAt, now, this.#random, cluster.intervalSeconds) : undefined;
    const current: CurrentCredentials | null = first
      ? { seq: await this.#records.nextSeq(), credentials: first.credentials, expiresAt: first.expiresAt, ...(refreshAt ? { refreshAt } : {}) }
      : null;
    const status = first && refreshAt ? refreshedStatus(first.expiresAt, new Date(now), refreshAt) : undefined;
    await this.#records.create(cluster.record, current, status);
    if (current && refreshAt) await this.#timer.plan({ clusterId: session.id, seq: current.seq }, refreshAt);
    await this.#route.open(session, current);
    return current;
  }

  /**
   * Replaces the credentials of `job.seq` (what a timer calls when a job is
   * due): mints once, stores them under the next seq, plans their refresh and
   * pushes them. A refresh of the same job already in flight is shared. A job
   * the cluster has moved past only plans the current one's refresh (a no-op
   * if planned); one of a cluster gone does nothing. Rejects with a
   * {@link CredfwdError} when the mint failed, once that is logged and recorded.
   */
  refresh(job: RefreshJob): Promise<void> {
    const key = `${job.clusterId}/${job.seq}`;
    let running = this.#inFlight.get(key);
    if (!running) {
      running = this.#refresh(job).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, running);
    }
    return running;
  }

  /** Refreshes a cluster now through its timer; false when the deployment does not refresh it (or it is gone). */
  async refreshNow(clusterId: string): Promise<boolean> {
    const current = await this.#records.current(clusterId);
    if (!current || !(await this.#records.refreshable(clusterId))) return false;
    await this.#timer.runNow({ clusterId, seq: current.seq });
    return true;
  }

  /** Where a cluster's refresh stands; undefined when it is not refreshed, or gone. */
  refreshStatus(clusterId: string): Promise<RefreshStatus | undefined> {
    return this.#records.refreshStatus(clusterId);
  }

  /** Deletes a cluster, drops its refresh and revokes its agents; undefined if it did not exist. */
  async delete(clusterId: string): Promise<DeletedRecord | undefined> {
    const deleted = await this.#records.delete(clusterId);
    if (deleted) await this.retire(clusterId, deleted);
    return deleted;
  }

  /** After a cluster's records were deleted (by `delete`, or by a deployment's own rule such as a lapsed lease): no refresh left, agents revoked. */
  async retire(clusterId: string, deleted: DeletedRecord): Promise<void> {
    if (deleted.seq !== undefined) await this.#timer.cancel({ clusterId, seq: deleted.seq });
    await this.#route.revoke(clusterId);
  }

  /** Runs argv on every ready agent of a cluster, refusing a task env too large for an agent before any is sent a frame. */
  async run(clusterId: string, argv: string[], options: RunOptions = {}): Promise<WorkerResult[]> {
    if (options.env) checkEnvironSize(options.env, 'the task env');
    return this.#route.run(clusterId, argv, options);
  }

  async #refresh(job: RefreshJob): Promise<void> {
    const { clusterId } = job;
    const current = await this.#records.current(clusterId);
    const cluster = await this.#records.refreshable(clusterId);
    if (!current || !cluster) return;
    if (current.seq !== job.seq) {
      // Already done, perhaps by a replica that died before planning the next one: plan it.
      if (current.seq > job.seq && current.refreshAt) await this.#timer.plan({ clusterId, seq: current.seq }, current.refreshAt);
      return;
    }
    let minted: Minted;
    try {
      minted = await cluster.minter.mint();
    } catch (err) {
      // Deleted while minting: nothing to record, nothing to retry.
      if (!(await this.#records.current(clusterId))) return;
      const error = await this.#failed(cluster, job, current, err);
      throw new CredfwdError(error.code, error.message, error.hint, { retryable: error.retryable });
    }
    await this.#adopt(clusterId, cluster, minted);
  }

  async #adopt(clusterId: string, cluster: RefreshableCluster<R>, minted: Minted): Promise<void> {
    const now = this.#now();
    const refreshAt = nextRefreshAt(minted.expiresAt, now, this.#random, cluster.intervalSeconds);
    const next: CurrentCredentials = { seq: await this.#records.nextSeq(), credentials: minted.credentials, expiresAt: minted.expiresAt, refreshAt };
    const before = await this.#records.refreshStatus(clusterId);
    // False when the cluster was deleted while minting: what was minted is dropped.
    if (!(await this.#records.saveCurrent(clusterId, next, refreshedStatus(minted.expiresAt, new Date(now), refreshAt)))) return;
    await this.#timer.plan({ clusterId, seq: next.seq }, refreshAt);
    if (before && before.consecutiveFailures > 0) this.#logger.info({ clusterId, afterFailures: before.consecutiveFailures }, 'credential refresh recovered');
    try {
      await this.#route.push(clusterId, next);
    } catch (err) {
      this.#logger.error({ clusterId, reason: errorMessage(err) }, 'credentials push failed');
    }
    this.#onRefreshed?.(cluster.record, next);
  }

  async #failed(cluster: RefreshableCluster<R>, job: RefreshJob, current: CurrentCredentials, err: unknown): Promise<RefreshError> {
    const { clusterId } = job;
    const now = this.#now();
    const error = refreshErrorOf(err, new Date(now));
    const previous = (await this.#records.refreshStatus(clusterId)) ?? refreshedStatus(current.expiresAt, new Date(now), undefined);
    const failures = previous.consecutiveFailures;
    const delay = error.retryable ? backoffDelay(failures, this.#random) : undefined;
    const retryAt = delay === undefined ? undefined : this.#timer.retry(job, delay);
    const fields = {
      clusterId, code: error.code, reason: error.message, hint: error.hint, attempt: failures + 1,
      expiresInSeconds: Math.round((current.expiresAt.getTime() - now) / 1000),
    };
    if (delay === undefined) {
      this.#logger.error(fields, 'credential refresh failed and will not be retried until the cause is fixed; current credentials stay in use until they expire');
    } else {
      this.#logger.error({ ...fields, ...(retryAt ? { retryInSeconds: Math.round(delay * 10) / 10 } : {}) }, 'credential refresh failed; current credentials stay in use until they expire');
    }
    await this.#records.saveRefreshStatus(clusterId, failedRefreshStatus(previous, error, retryAt));
    this.#onRefreshFailed?.(cluster.record, error);
    return error;
  }
}
