import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { descendantPids } from '../../tests/helpers/processes.ts';

/** Every process a benchmark started and has not seen exit: killed by {@link killAll}. */
const live = new Set<ChildProcess>();

/** How much of a child's stderr is kept, to explain a child that failed. */
const STDERR_TAIL_CHARS = 4096;

/** A started process, with the end of its stderr kept for error messages. */
export interface Tracked {
  child: ChildProcess;
  /** Settles when the process has exited. */
  exited: Promise<void>;
  stderrTail(): string;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns a process that {@link killAll} will kill if the run ends early.
 * stderr is always piped (and drained, so a chatty child never blocks).
 */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): Tracked {
  const stdio = options.stdio ?? ['ignore', 'ignore', 'pipe'];
  const child = spawn(command, args, { ...options, stdio });
  live.add(child);
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  const exited = new Promise<void>((resolve) => {
    const gone = (): void => {
      live.delete(child);
      resolve();
    };
    child.once('exit', gone);
    child.once('error', () => { if (child.pid === undefined) gone(); });
  });
  let stopping: Promise<void> | undefined;
  return {
    child,
    exited,
    stderrTail: () => tail,
    stop: (graceMs = 3_000) => {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const escalate = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(escalate);
      })();
      return stopping;
    },
  };
}

/** Kills every tracked process still running; for error paths and the run's watchdog. */
export function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

/**
 * Kills every process below this one, tracked or not (moto, the agents that
 * `launchCluster` starts): for a run that is being cut short.
 */
export function killDescendants(): void {
  killAll();
  for (const pid of descendantPids(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** A Node program of bench/ driven over IPC, from {@link spawnWorker}. */
export interface Worker extends Tracked {
  /** Sends a request and resolves with the program's answer; rejects when it fails or exits first. */
  call<T>(method: string, params?: unknown): Promise<T>;
}

/**
 * Starts a bench/ program (see `serve` in worker-side.ts) with an IPC
 * channel. Secrets such as join strings travel over IPC, never argv or env
 * of the simulators.
 */
export function spawnWorker(file: string, options: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}): Worker {
  const tracked = spawnTracked(process.execPath, [...(options.execArgv ?? []), file], {
    env: options.env ?? process.env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let nextId = 1;
  tracked.child.on('message', (message: Reply) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.value);
    else waiter.reject(new Error(message.error ?? 'failed'));
  });
  void tracked.exited.then(() => {
    const why = tracked.stderrTail().trim().split('\n').slice(-3).join(' | ');
    for (const waiter of pending.values()) waiter.reject(new Error(`${file} exited${why ? `: ${why}` : ''}`));
    pending.clear();
  });
  return {
    ...tracked,
    call<T>(method: string, params?: unknown): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        tracked.child.send({ id, method, params }, (err) => {
          if (err) {
            pending.delete(id);
            reject(err);
          }
        });
      });
    },
  };
}
