import type { Writable } from 'node:stream';
import { workerResultToJson, type WorkerResult } from '../core/index.ts';

const NEWLINE = Buffer.from('\n');
/** A line longer than this is printed in pieces of this size, each as a line: memory stays bounded whatever a workload writes. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** A stream printed to: `once` lets the printer wait for 'drain' when the stream holds too much (streams without it are never waited for). */
export type PrinterStream = Pick<Writable, 'write'> & Partial<Pick<Writable, 'once' | 'off'>>;

/** Where printed output goes; the process's own stdout and stderr by default. */
export interface PrinterStreams {
  stdout: PrinterStream;
  stderr: PrinterStream;
}

/** Prints workers' output as it arrives; see {@link createLinePrinter}. */
export interface LinePrinter {
  /**
   * Takes a chunk of one worker's stream and prints the lines it completes;
   * while the stream it printed to holds more than it wants (its reader is
   * slow or stalled), returns a promise that resolves once it drains.
   */
  write(worker: string, stream: 'stdout' | 'stderr', chunk: Buffer): Promise<void> | undefined;
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
  const drains = new Map<'stdout' | 'stderr', Promise<void>>();
  // One promise per stream while it is full, not one per write: a listener per write would pile up on the stream.
  const drained = (stream: 'stdout' | 'stderr'): Promise<void> | undefined => {
    const target = streams[stream];
    if (!target.once || !target.off) return undefined;
    let waiting = drains.get(stream);
    if (!waiting) {
      waiting = new Promise<void>((resolve) => {
        // A stream that fails or closes will never drain; the launcher ends on its own error handling then.
        const settle = (): void => {
          for (const event of ['drain', 'error', 'close']) target.off?.(event, settle);
          drains.delete(stream);
          resolve();
        };
        for (const event of ['drain', 'error', 'close']) target.once?.(event, settle);
      });
      drains.set(stream, waiting);
    }
    return waiting;
  };
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
      if (parts.length > 0 && !streams[stream].write(Buffer.concat(parts))) return drained(stream);
      return drains.get(stream);
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
