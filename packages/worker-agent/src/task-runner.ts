import { spawn, type ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { MAX_OUTPUT_CHUNK_BYTES, type Exit, type Logger, type Output } from '@credfwd/shared';
import { splitUtf8 } from './split-utf8.ts';

/** Exit code for a task the agent refused to start (`env` and `timeout` use 125 for their own failures). */
const TASK_REFUSED_EXIT_CODE = 125;
/** Exit code for a command that could not be started (as shells use 127). */
const TASK_NOT_STARTED_EXIT_CODE = 127;

const DEFAULT_KILL_GRACE_MS = 5_000;
// setTimeout treats anything longer as 1 ms; a longer deadline means none at all.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Where task frames go, in the order they must reach the coordinator. */
export interface TaskSink {
  send(message: Output | Exit): void;
}

/** A task, ready to run: its environment is already built. */
export interface TaskSpec {
  taskId: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

/** Options of {@link TaskRunner}. */
export interface TaskRunnerOptions {
  sink: TaskSink;
  logger: Logger;
  /** Time between SIGTERM and SIGKILL when a task times out or is killed. */
  killGraceMs?: number;
}

interface RunningTask {
  child: ChildProcess;
  timers: Set<NodeJS.Timeout>;
  terminating: boolean;
  exited: Promise<void>;
}

/**
 * Runs tasks as child processes, each in its own process group, and streams
 * their output and exit to a sink.
 */
export class TaskRunner {
  readonly #sink: TaskSink;
  readonly #logger: Logger;
  readonly #killGraceMs: number;
  readonly #tasks = new Map<string, RunningTask>();

  constructor(options: TaskRunnerOptions) {
    this.#sink = options.sink;
    this.#logger = options.logger;
    this.#killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  }

  /** True while a task with this id runs. */
  has(taskId: string): boolean {
    return this.#tasks.has(taskId);
  }

  /** Reports a task as not started: `message` as one stderr line, then exit 125. */
  refuse(taskId: string, message: string): void {
    this.#logger.warn({ taskId }, 'task refused');
    this.#reportNotRun(taskId, message, TASK_REFUSED_EXIT_CODE);
  }

  /** Starts a task; its output and exit reach the sink. */
  run(spec: TaskSpec): void {
    const { taskId, argv } = spec;
    const command = argv[0];
    if (command === undefined) {
      this.refuse(taskId, 'credfwd-agent: the task has an empty argv');
      return;
    }
    if (this.#tasks.has(taskId)) {
      // An exit frame here would tell the coordinator the running task ended.
      this.#logger.warn({ taskId }, 'task id already running; duplicate run ignored');
      return;
    }
    let child: ChildProcess;
    try {
      // detached: its own process group, so a kill reaches every process the task started.
      child = spawn(command, argv.slice(1), { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      this.#notStarted(spec, err);
      return;
    }
    const timers = new Set<NodeJS.Timeout>();
    const exited = new Promise<void>((resolve) => {
      let spawnError: unknown;
      child.once('error', (err) => {
        if (child.pid === undefined) spawnError = err;
        else this.#logger.warn({ taskId, reason: (err as NodeJS.ErrnoException).code }, 'task process error');
      });
      const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
      for (const stream of ['stdout', 'stderr'] as const) {
        child[stream]?.on('data', (data: Buffer) => this.#output(taskId, stream, decoders[stream].write(data)));
      }
      // 'close' comes after both pipes are drained, so the exit frame follows all output.
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.#output(taskId, 'stdout', decoders.stdout.end());
        this.#output(taskId, 'stderr', decoders.stderr.end());
        for (const timer of timers) clearTimeout(timer);
        this.#tasks.delete(taskId);
        if (spawnError === undefined) {
          this.#logger.info({ taskId, code, signal }, 'task exited');
          this.#sink.send({ type: 'exit', taskId, code, signal });
        } else {
          this.#notStarted(spec, spawnError);
        }
        resolve();
      });
    });
    const task: RunningTask = { child, timers, terminating: false, exited };
    this.#tasks.set(taskId, task);
    if (child.pid !== undefined) this.#logger.info({ taskId, command, pid: child.pid }, 'task started');
    if (spec.timeoutMs !== undefined && spec.timeoutMs <= MAX_TIMER_MS) {
      const timeoutMs = spec.timeoutMs;
      this.#later(task, timeoutMs, () => {
        this.#logger.warn({ taskId, timeoutMs }, 'task timed out; terminating');
        this.#terminate(task);
      });
    }
  }

  /** Terminates every running task (SIGTERM, then SIGKILL after the grace) and waits for their exits. */
  async killAll(): Promise<void> {
    const tasks = [...this.#tasks.values()];
    for (const task of tasks) this.#terminate(task);
    await Promise.all(tasks.map((task) => task.exited));
  }

  #terminate(task: RunningTask): void {
    if (task.terminating) return;
    task.terminating = true;
    killGroup(task.child, 'SIGTERM');
    this.#later(task, this.#killGraceMs, () => killGroup(task.child, 'SIGKILL'));
  }

  #later(task: RunningTask, ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      task.timers.delete(timer);
      fn();
    }, ms);
    task.timers.add(timer);
  }

  #output(taskId: string, stream: 'stdout' | 'stderr', text: string): void {
    for (const chunk of splitUtf8(text, MAX_OUTPUT_CHUNK_BYTES)) this.#sink.send({ type: 'output', taskId, stream, chunk });
  }

  #notStarted(spec: TaskSpec, err: unknown): void {
    const reason = (err as NodeJS.ErrnoException).code ?? 'spawn failed';
    const where = spec.cwd === undefined ? '' : ` in ${spec.cwd}`;
    this.#logger.warn({ taskId: spec.taskId, command: spec.argv[0], reason }, 'task could not be started');
    this.#reportNotRun(spec.taskId, `credfwd-agent: cannot start ${JSON.stringify(spec.argv[0]?.slice(0, 256))}${where}: ${reason}`, TASK_NOT_STARTED_EXIT_CODE);
  }

  #reportNotRun(taskId: string, message: string, code: number): void {
    this.#output(taskId, 'stderr', message.endsWith('\n') ? message : `${message}\n`);
    this.#sink.send({ type: 'exit', taskId, code, signal: null });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the whole group is already gone; EPERM (a setuid member): nothing more the agent can do.
  }
}
