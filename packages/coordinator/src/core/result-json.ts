import { isUtf8 } from 'node:buffer';
import { workerResult, type WorkerResult } from './worker-result.ts';

/**
 * A worker's result as JSON (`credfwd launch --json`, the admin API): each
 * stream as `stdout`/`stderr` text when its bytes are valid UTF-8, else as
 * `stdoutBase64`/`stderrBase64`, so bytes that are not text arrive exact.
 */
export interface WorkerResultJson {
  worker: string;
  /** Where the worker ran, when the launcher started it. */
  host?: string;
  exitCode: number | null;
  signal: string | null;
  stdout?: string;
  stdoutBase64?: string;
  stderr?: string;
  stderrBase64?: string;
}

/** Encodes a result for JSON; see {@link WorkerResultJson}. */
export function workerResultToJson(result: WorkerResult): WorkerResultJson {
  return {
    worker: result.worker,
    ...(result.host === undefined ? {} : { host: result.host }),
    exitCode: result.exitCode,
    signal: result.signal,
    ...(isUtf8(result.stdoutBytes) ? { stdout: result.stdout } : { stdoutBase64: result.stdoutBytes.toString('base64') }),
    ...(isUtf8(result.stderrBytes) ? { stderr: result.stderr } : { stderrBase64: result.stderrBytes.toString('base64') }),
  };
}

/** Decodes what {@link workerResultToJson} encoded. */
export function workerResultFromJson(json: WorkerResultJson): WorkerResult {
  const bytes = (text: string | undefined, base64: string | undefined): Buffer =>
    base64 === undefined ? Buffer.from(text ?? '', 'utf8') : Buffer.from(base64, 'base64');
  const result = workerResult(json.worker, json.exitCode, json.signal, bytes(json.stdout, json.stdoutBase64), bytes(json.stderr, json.stderrBase64));
  return json.host === undefined ? result : { ...result, host: json.host };
}
