import type { RefreshJob, RefreshTimer } from '../core/index.ts';

/**
 * The embedded coordinator's refresh timer: one `setTimeout` per cluster,
 * replaced whenever its next refresh is planned. It retries by itself, when
 * the lifecycle says.
 */
export class TimerRefresh implements RefreshTimer {
  readonly #run: (job: RefreshJob) => Promise<void>;
  readonly #now: () => number;
  readonly #timers = new Map<string, NodeJS.Timeout>();

  /** `run` is the lifecycle's refresh; `now` is the clock the delays are reckoned on. */
  constructor(run: (job: RefreshJob) => Promise<void>, now: () => number = Date.now) {
    this.#run = run;
    this.#now = now;
  }

  async plan(job: RefreshJob, at: Date): Promise<void> {
    this.#arm(job, at.getTime() - this.#now());
  }

  retry(job: RefreshJob, afterSeconds: number): Date {
    this.#arm(job, afterSeconds * 1000);
    return new Date(this.#now() + afterSeconds * 1000);
  }

  async cancel(job: RefreshJob): Promise<void> {
    this.#disarm(job.clusterId);
  }

  /** Drops the plan and refreshes now, rejecting with the refresh's error. */
  async runNow(job: RefreshJob): Promise<void> {
    this.#disarm(job.clusterId);
    await this.#run(job);
  }

  /** Drops every plan. Idempotent. */
  close(): void {
    for (const clusterId of [...this.#timers.keys()]) this.#disarm(clusterId);
  }

  #arm(job: RefreshJob, delayMs: number): void {
    this.#disarm(job.clusterId);
    const timer = setTimeout(() => {
      this.#timers.delete(job.clusterId);
      // A failure is logged, recorded and reported by the lifecycle, which plans any retry.
      this.#run(job).catch(() => undefined);
    }, Math.max(0, delayMs));
    timer.unref();
    this.#timers.set(job.clusterId, timer);
  }

  #disarm(clusterId: string): void {
    clearTimeout(this.#timers.get(clusterId));
    this.#timers.delete(clusterId);
  }
}
