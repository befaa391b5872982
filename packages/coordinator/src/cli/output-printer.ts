import type { Writable } from 'node:stream';
import { workerResultToJson, type OutputListener, type WorkerResult } from '../core/index.ts';

const NEWLINE = Buffer.from('\n');
/** A line longer than this is printed in pieces of this size, each as a line: memory stays bounded whatever a workload writes. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Where printed output goes; the process's own stdout and stderr by default. */
export interface PrinterStreams {
  stdout: Pick<Writable, 'write'>;
  stderr: Pick<Writable, 'write'>;
}

/** Prints workers' output as it arrives; see {@link createLinePrinter}. */
export interface LinePrinter {
  /** Takes a chunk of one worker's stream and prints the lines it completes. */
  write: OutputListener;
  /** Prints every line still waiting for its newline, with one: a last line without a newline is output too. */
  flush(): void;
}

/**
 * Prints each line of each worker's output as `worker | line`, the line's
 * bytes exactly as the command wrote them (text or not), stdout to stdout and
 * stderr to stderr. Lines are never interleaved with another worker's; a
 * line over {@link MAX_LINE_BYTES} is cut into lines of that size.
 */
export function createLinePrinter(streams: PrinterStreams = process): LinePrinter {
  const pending = new Map<string, { worker: string; stream: 'stdout' | 'stderr'; bytes: Buffer }>();
  const prefix = (worker: string): Buffer => Buffer.from(`${worker} | `);
  return {
    write(worker, stream, chunk) {
      const key = `${worker}\0${stream}`;
      let rest = Buffer.concat([pending.get(key)?.bytes ?? Buffer.alloc(0), chunk]);
      const parts: Buffer[] = [];
      for (let newline = rest.indexOf(0x0a); newline !== -1; newline = rest.indexOf(0x0a)) {
        parts.push(prefix(worker), rest.subarray(0, newline + 1));
        rest = rest.subarray(newline + 1);
      }
      while (rest.length >= MAX_LINE_BYTES) {
        parts.push(prefix(worker), rest.subarray(0, MAX_LINE_BYTES), NEWLINE);
        rest = rest.subarray(MAX_LINE_BYTES);
      }
      pending.set(key, { worker, stream, bytes: rest });
      // One write per chunk, not per line: millions of lines would cost as many system calls.
      if (parts.length > 0) streams[stream].write(Buffer.concat(parts));
    },
    flush() {
      for (const { worker, stream, bytes } of pending.values()) {
        if (bytes.length > 0) streams[stream].write(Buffer.concat([prefix(worker), bytes, NEWLINE]));
      }
      pending.clear();
    },
  };
}

/** Prints collected results' output as {@link createLinePrinter} prints streamed output. */
export function printOutputs(results: WorkerResult[], streams: PrinterStreams = process): void {
  for (const r of results) {
    const printer = createLinePrinter(streams);
    printer.write(r.worker, 'stdout', r.stdoutBytes);
    printer.write(r.worker, 'stderr', r.stderrBytes);
    printer.flush();
  }
}

/**
 * With `json`, prints one JSON object per worker (output encoded as
 * {@link workerResultToJson} says); otherwise a line on stderr for each worker
 * that did not exit 0.
 */
export function printResults(results: WorkerResult[], json: boolean, streams: PrinterStreams = process): void {
  for (const r of results) {
    if (json) {
      streams.stdout.write(`${JSON.stringify(workerResultToJson(r))}\n`);
    } else if (r.exitCode !== 0) {
      streams.stderr.write(`credfwd: ${r.worker} ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.exitCode ?? 'no status'}`}\n`);
    }
  }
}
