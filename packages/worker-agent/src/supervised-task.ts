import { spawn, type ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '@credfwd/shared';
import type { RefreshAction } from './refresh-action.ts';
import { sendOutput, type TaskSink } from './task-sink.ts';

/** Exit code for a command that could not be started (as shells use 127). */
const TASK_NOT_STARTED_EXIT_CODE = 127;
// setTimeout treats anything longer as 1 ms; a longer deadline means none at all.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A task, ready to run: the environment of its first run is already built. */
export interface TaskSpec {
  taskId: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Ends the task this long after it started, restarts included. */
  timeoutMs?: number;
  /** What to do when newer credentials are stored; nothing when absent. */
  onRefresh?: RefreshAction;
}

/** What a {@link SupervisedTask} needs from the runner that owns it. */
export interface SupervisedTaskContext {
  sink: TaskSink;
  logger: Logger;
  /** Time between SIGTERM and SIGKILL whenever a process is stopped. */
  killGraceMs: number;
  /** Called once, just before the task's exit frame is sent. */
  ended(taskId: string): void;
}

interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type State =
  | 'running' // a process runs
  | 'restarting' // its process was told to stop; another starts once it has
  | 'waiting' // stopped for a restart, until usable credentials arrive
  | 'ending' // its process was told to stop for good
  | 'ended';

/**
 * One task: its process, in a process group of its own, with output and exit
 * streamed to the sink. On a credentials refresh it may signal the process or
 * restart it with a fresh environment, under the same task id; only the end
 * of the task, not a restart, sends an exit frame.
 */
export class SupervisedTask {
  /** Resolves once the exit frame has been sent. */
  readonly ended: Promise<void>;
  readonly #spec: TaskSpec;
  readonly #context: SupervisedTaskContext;
  readonly #resolveEnded: () => void;
  #state: State = 'running';
  #child: ChildProcess | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  // What a task left stopped for a restart reports if it never runs again.
  #lastEnd: ProcessEnd = { code: null, signal: null };

  constructor(spec: TaskSpec, context: SupervisedTaskContext) {
    this.#spec = spec;
    this.#context = context;
    let resolveEnded!: () => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.#resolveEnded = resolveEnded;
  }

  /** Starts the first run and the timeout. */
  start(): void {
    this.#spawn(this.#spec.env);
    const { timeoutMs, taskId } = this.#spec;
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS && this.#state !== 'ended') {
      this.#deadline = setTimeout(() => {
        this.#context.logger.warn({ taskId, timeoutMs }, 'task timed out; terminating');
        this.stop();
      }, timeoutMs);
    }
  }

  /** Acts on newer credentials as the task's `onRefresh` says. */
  refresh(): void {
    const action = this.#spec.onRefresh;
    const { taskId } = this.#spec;
    if (action?.kind === 'signal') {
      if (this.#state !== 'running' || !this.#child) return;
      this.#context.logger.info({ taskId, signal: action.signal }, 'signalling task on credentials refresh');
      killGroup(this.#child, action.signal);
    } else if (action?.kind === 'restart') {
      if (this.#state === 'running') {
        this.#state = 'restarting';
        this.#context.logger.info({ taskId }, 'restarting task on credentials refresh');
        this.#kill();
      } else if (this.#state === 'waiting') {
        this.#respawn(action.freshEnv);
      }
      // While 'restarting', nothing more: the next run is built from the newest credentials anyway.
    }
  }

  /** Ends the task for good (SIGTERM, then SIGKILL after the grace); its exit frame follows. */
  stop(): void {
    switch (this.#state) {
      case 'running':
        this.#state = 'ending';
        this.#kill();
        break;
      case 'restarting':
        // Already being killed; it just must not come back.
        this.#state = 'ending';
        break;
      case 'waiting':
        this.#finish(this.#lastEnd);
        break;
      default:
        break;
    }
  }

  #spawn(env: Record<string, string>): void {
    const { taskId, argv, cwd } = this.#spec;
    let child: ChildProcess;
    try {
      // detached: its own process group, so a signal reaches every process the task started.
      child = spawn(argv[0] ?? '', argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      this.#notStarted(err);
      return;
    }
    this.#child = child;
    let spawnError: unknown;
    child.on('error', (err) => {
      if (child.pid === undefined) spawnError = err;
      else this.#context.logger.warn({ taskId, reason: (err as NodeJS.ErrnoException).code }, 'task process error');
    });
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]?.on('data', (data: Buffer) => sendOutput(this.#context.sink, taskId, stream, decoders[stream].write(data)));
    }
    // 'close' comes after both pipes are drained, so whatever follows comes after all of this run's output.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      sendOutput(this.#context.sink, taskId, 'stdout', decoders.stdout.end());
      sendOutput(this.#context.sink, taskId, 'stderr', decoders.stderr.end());
      clearTimeout(this.#killTimer);
      this.#child = undefined;
      if (spawnError === undefined) this.#exited({ code, signal });
      else this.#notStarted(spawnError);
    });
    if (child.pid !== undefined) this.#context.logger.info({ taskId, command: argv[0], pid: child.pid }, 'task started');
  }

  #exited(end: ProcessEnd): void {
    const action = this.#spec.onRefresh;
    this.#lastEnd = end;
    if (this.#state === 'restarting' && action?.kind === 'restart') {
      this.#context.logger.info({ taskId: this.#spec.taskId, ...end }, 'task stopped for restart');
      this.#respawn(action.freshEnv);
      return;
    }
    this.#context.logger.info({ taskId: this.#spec.taskId, ...end }, 'task exited');
    this.#finish(end);
  }

  #respawn(freshEnv: () => Record<string, string> | undefined): void {
    const env = freshEnv();
    if (env === undefined) {
      // Never into expired credentials: the command would only fail, or fall back to another identity.
      this.#state = 'waiting';
      this.#context.logger.warn({ taskId: this.#spec.taskId }, 'no unexpired credentials; task stays stopped until fresh credentials arrive');
      return;
    }
    this.#state = 'running';
    this.#spawn(env);
  }

  #kill(): void {
    const child = this.#child;
    if (!child) return;
    killGroup(child, 'SIGTERM');
    this.#killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), this.#context.killGraceMs);
  }

  #notStarted(err: unknown): void {
    const { taskId, argv, cwd } = this.#spec;
    const reason = (err as NodeJS.ErrnoException).code ?? 'spawn failed';
    const where = cwd === undefined ? '' : ` in ${cwd}`;
    this.#context.logger.warn({ taskId, command: argv[0], reason }, 'task could not be started');
    sendOutput(this.#context.sink, taskId, 'stderr', `credfwd-agent: cannot start ${JSON.stringify(argv[0]?.slice(0, 256))}${where}: ${reason}\n`);
    this.#finish({ code: TASK_NOT_STARTED_EXIT_CODE, signal: null });
  }

  #finish(end: ProcessEnd): void {
    this.#state = 'ended';
    clearTimeout(this.#deadline);
    clearTimeout(this.#killTimer);
    const { taskId } = this.#spec;
    this.#context.ended(taskId);
    this.#context.sink.send({ type: 'exit', taskId, code: end.code, signal: end.signal });
    this.#resolveEnded();
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
