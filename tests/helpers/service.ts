import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A long-running peer process started by {@link startService}. */
export interface Service {
  child: ChildProcess;
  /** The output line that matched `ready`. */
  readyLine: string;
  /** Every line it has printed so far, stdout and stderr, for what-leaked checks. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface ServiceSpec {
  command: string;
  args: string[];
  /** The peer's whole environment; this process's when absent. */
  env?: Record<string, string>;
  /** A line on stdout or stderr that means the peer is serving. */
  ready: RegExp;
  /** Deadline for the ready line: a bound on a hung peer, not a wait. */
  readyTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL in `stop()`. */
  graceMs?: number;
}

/** How many of the peer's last output lines an error quotes. */
const TAIL_LINES = 20;

/**
 * Spawns a peer and resolves once it prints its ready line. Rejects, with the
 * peer's last output, if it cannot be spawned, exits first or never gets
 * ready. Its output is read for as long as it runs, because a peer blocked
 * on a full pipe would stop answering.
 */
export async function startService(spec: ServiceSpec): Promise<Service> {
  const child = spawn(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'pipe'], ...(spec.env ? { env: spec.env } : {}) });
  const tail: string[] = [];
  const lines: string[] = [];
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    const markGone = (): void => {
      exited = true;
      resolve();
    };
    child.once('exit', markGone);
    // A child that could not be spawned emits 'error' and maybe never 'exit'.
    child.once('error', () => { if (child.pid === undefined) markGone(); });
  });
  // Last resort if a test file dies without running its teardown: no orphan outlives the worker.
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const escalate = setTimeout(() => child.kill('SIGKILL'), spec.graceMs ?? 5_000);
        await gone;
        clearTimeout(escalate);
      }
      process.off('exit', killOnExit);
    })();
    return stopping;
  };

  const ready = new Promise<string>((resolve, reject) => {
    const timeoutMs = spec.readyTimeoutMs ?? 30_000;
    const fail = (what: string, cause?: unknown): void => {
      clearTimeout(deadline);
      const output = tail.length > 0 ? `; its last output:\n${tail.join('\n')}` : '';
      reject(new Error(`${spec.command} ${what}${output}`, { cause }));
    };
    const deadline = setTimeout(() => fail(`printed no line matching ${spec.ready} within ${timeoutMs} ms`), timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        lines.push(line);
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        if (spec.ready.test(line)) {
          clearTimeout(deadline);
          resolve(line);
        }
      });
    }
    child.once('error', (err: NodeJS.ErrnoException) => {
      fail(err.code === 'ENOENT' ? `is not on PATH (PATH=${process.env.PATH ?? ''})` : `could not be started: ${err.message}`, err);
    });
    // 'close' rather than 'exit', so the tail holds its last words (such as "address in use").
    child.once('close', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before it was ready`));
  });

  let readyLine: string;
  try {
    readyLine = await ready;
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, readyLine, stop, output: () => lines.join('\n') };
}
