/** One planned refresh: mint the credentials that replace sequence number `seq` of a cluster. */
export interface RefreshJob {
  clusterId: string;
  seq: number;
}

/**
 * Who schedules refreshes: a timer per cluster embedded, a BullMQ job per
 * refresh in the service. When a job is due the timer calls
 * `ClusterLifecycle.refresh(job)`, which rejects when the refresh failed.
 */
export interface RefreshTimer {
  /** Plans a job for `at`; planning the job already planned changes nothing. */
  plan(job: RefreshJob, at: Date): Promise<void>;
  /**
   * After a failure that retrying may fix: plans the job again in
   * `afterSeconds` and says when, or answers undefined when the retry is
   * planned elsewhere (BullMQ retries a job that rejected, with the same
   * backoff policy) and its time is not known here.
   */
  retry(job: RefreshJob, afterSeconds: number): Date | undefined;
  /** Drops a job (its cluster was deleted). */
  cancel(job: RefreshJob): Promise<void>;
  /**
   * Runs a job now instead of when planned: how a refresh resumes after
   * `needs-attention`. Embedded it waits for the refresh and rejects with its
   * error; the service queues it for whichever replica takes it.
   */
  runNow(job: RefreshJob): Promise<void>;
}
