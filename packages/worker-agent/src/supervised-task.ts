import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@credfwd/shared';
import type { RefreshAction } from './refresh-action.ts';
import { newTaskMark, stopTaskProcesses, TASK_MARK_VARIABLE } from './task-processes.ts';
import { sendOutput, type TaskSink } from './task-sink.ts';

/** Exit code for a command that could not be started (as shells use 127). */
const TASK_NOT_STARTED_EXIT_CODE = 127;
// setTimeout treats anything longer as 1 ms; a longer deadline means none at all.
const MAX_TIMER_MS = 2 ** 31 - 1;
// How long a run whose processes are all stopped may keep its pipes open: only one that escaped the stop can hold them.
const ESCAPED_PIPE_MS = 1_000;

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

/** One run of the task's command: its first process, and every process that carries its mark. */
interface Run {
  child: ChildProcess;
  mark: string;
  /** Set once the run's processes are being stopped; settles when none is left. */
  stopping?: Promise<void>;
  /** Paused while the sink has a backlog. */
  paused: boolean;
  /** Read whatever the backlog: its processes are gone, so what is left in its pipes is bounded. */
  draining: boolean;
  escapeTimer?: NodeJS.Timeout;
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
 * of the task, not a restart, sends an exit frame. Every process a run
 * started, in the background or in a session of its own too, is stopped when
 * the run ends, is restarted or is stopped.
 */
export class SupervisedTask {
  /** Resolves once the exit frame has been sent. */
  readonly ended: Promise<void>;
  readonly #spec: TaskSpec;
  readonly #context: SupervisedTaskContext;
  readonly #resolveEnded: () => void;
  #state: State = 'running';
  #run: Run | undefined;
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
      if (this.#state !== 'running' || !this.#run) return;
      this.#context.logger.info({ taskId, signal: action.signal }, 'signalling task on credentials refresh');
      killGroup(this.#run.child, action.signal);
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
    const mark = newTaskMark();
    let child: ChildProcess;
    try {
      // detached: its own process group, so a signal reaches every process the task started.
      child = spawn(argv[0] ?? '', argv.slice(1), { cwd, env: { ...env, [TASK_MARK_VARIABLE]: mark }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      this.#notStarted(err);
      return;
    }
    const run: Run = { child, mark, paused: false, draining: false };
    this.#run = run;
    let spawnError: unknown;
    child.on('error', (err) => {
      if (child.pid === undefined) spawnError = err;
      else this.#context.logger.warn({ taskId, reason: (err as NodeJS.ErrnoException).code }, 'task process error');
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]?.on('data', (data: Buffer) => {
        sendOutput(this.#context.sink, taskId, stream, data);
        this.#throttle(run);
      });
    }
    // The first process is gone, but what it left in the background may hold its pipes open, and 'close' waits for them.
    child.once('exit', () => void this.#stopProcesses(run));
    // 'close' comes after both pipes are drained, so whatever follows comes after all of this run's output.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => void this.#closed(run, { code, signal }, spawnError));
    if (child.pid !== undefined) this.#context.logger.info({ taskId, command: argv[0], pid: child.pid }, 'task started');
  }

  async #closed(run: Run, end: ProcessEnd, spawnError: unknown): Promise<void> {
    await this.#stopProcesses(run);
    clearTimeout(run.escapeTimer);
    this.#run = undefined;
    if (spawnError === undefined) this.#exited(end);
    else this.#notStarted(spawnError);
  }

  /** Stops every process of the run (once; later calls share the first): SIGTERM, SIGKILL after the grace. */
  #stopProcesses(run: Run): Promise<void> {
    run.stopping ??= this.#stopAll(run);
    return run.stopping;
  }

  async #stopAll(run: Run): Promise<void> {
    const groupId = run.child.pid;
    if (groupId === undefined) return;
    const { taskId } = this.#spec;
    const stopped = await stopTaskProcesses({ mark: run.mark, groupId, graceMs: this.#context.killGraceMs });
    if (stopped.survivors.length > 0) this.#context.logger.warn({ taskId, survivors: stopped.survivors }, 'task processes outlived SIGKILL');
    else if (stopped.signalled > 0) this.#context.logger.info({ taskId, signalled: stopped.signalled }, 'task processes stopped');
    this.#drain(run);
    // Only a process that escaped the stop (it cleared its environment and left the group) still holds the pipes: end anyway.
    run.escapeTimer = setTimeout(() => {
      this.#context.logger.warn({ taskId }, 'a process outside the task\'s reach holds its output open; closing it');
      run.child.stdout?.destroy();
      run.child.stderr?.destroy();
    }, ESCAPED_PIPE_MS);
  }

  /** Stops reading the run's output while the sink has a backlog, so a fast writer is slowed down rather than buffered without bound. */
  #throttle(run: Run): void {
    if (run.paused || run.draining) return;
    const backlog = this.#context.sink.backlog();
    if (!backlog) return;
    run.paused = true;
    run.child.stdout?.pause();
    run.child.stderr?.pause();
    void backlog.then(() => {
      run.paused = false;
      run.child.stdout?.resume();
      run.child.stderr?.resume();
    });
  }

  #drain(run: Run): void {
    run.draining = true;
    run.child.stdout?.resume();
    run.child.stderr?.resume();
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
    if (this.#run) void this.#stopProcesses(this.#run);
  }

  #notStarted(err: unknown): void {
    const { taskId, argv, cwd } = this.#spec;
    const reason = (err as NodeJS.ErrnoException).code ?? 'spawn failed';
    const where = cwd === undefined ? '' : ` in ${cwd}`;
    this.#context.logger.warn({ taskId, command: argv[0], reason }, 'task could not be started');
    sendOutput(this.#context.sink, taskId, 'stderr', Buffer.from(`credfwd-agent: cannot start ${JSON.stringify(argv[0]?.slice(0, 256))}${where}: ${reason}\n`));
    this.#finish({ code: TASK_NOT_STARTED_EXIT_CODE, signal: null });
  }

  #finish(end: ProcessEnd): void {
    this.#state = 'ended';
    clearTimeout(this.#deadline);
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
