/** One worker's outcome of a command. */
export interface WorkerResult {
  worker: string;
  /** Where the worker ran, when the launcher started it (`localhost`, an SSH host); absent for agents that joined by themselves. */
  host?: string;
  exitCode: number | null;
  signal: string | null;
  /** The output as UTF-8 text, for convenience: bytes that are not UTF-8 read as U+FFFD here, never in `stdoutBytes`. */
  stdout: string;
  stderr: string;
  /** The output exactly as the command wrote it (up to MAX_KEPT_OUTPUT_BYTES per stream). */
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
}

/**
 * Streams output as it arrives, for long-running commands: the exact bytes,
 * in chunks cut anywhere (even inside a character). A listener that cannot
 * keep up returns a promise: that worker's agent is not read until it
 * settles, so its workload is slowed down (nothing is dropped) while the
 * connection stays alive.
 */
export type OutputListener = (worker: string, stream: 'stdout' | 'stderr', chunk: Buffer) => void | Promise<unknown>;

/** A worker's result from its output bytes; the text fields are decoded from them. */
export function workerResult(worker: string, exitCode: number | null, signal: string | null, stdoutBytes: Buffer, stderrBytes: Buffer): WorkerResult {
  return { worker, exitCode, signal, stdout: stdoutBytes.toString('utf8'), stderr: stderrBytes.toString('utf8'), stdoutBytes, stderrBytes };
}

/** Results sorted by worker id, numbers in ids compared as numbers (w2 before w10). */
export function byWorker(results: WorkerResult[]): WorkerResult[] {
  return results.sort((a, b) => a.worker.localeCompare(b.worker, 'en', { numeric: true }));
}

/** Names each result's host from where the launcher placed its worker. */
export function withHosts(results: WorkerResult[], placements: ReadonlyArray<{ agentId: string; host: string }>): WorkerResult[] {
  const hosts = new Map(placements.map((p) => [p.agentId, p.host]));
  return results.map((r) => {
    const host = hosts.get(r.worker);
    return host === undefined ? r : { ...r, host };
  });
}
