import type { Logger } from '@credfwd/shared';
import { SupervisedTask, type TaskSpec } from './supervised-task.ts';
import { sendOutput, type TaskSink } from './task-sink.ts';

/** Exit code for a task the agent refused to start (`env` and `timeout` use 125 for their own failures). */
const TASK_REFUSED_EXIT_CODE = 125;

const DEFAULT_KILL_GRACE_MS = 5_000;

/** Options of {@link TaskRunner}. */
export interface TaskRunnerOptions {
  sink: TaskSink;
  logger: Logger;
  /** Time between SIGTERM and SIGKILL when a task ends, times out, is killed or is restarted (default 5 s). */
  killGraceMs?: number;
}

/**
 * Runs tasks as child processes, each in its own process group, streams their
 * output and exit to a sink, and applies credential refreshes to them. A
 * task's end stops every process it started.
 */
export class TaskRunner {
  readonly #sink: TaskSink;
  readonly #logger: Logger;
  readonly #killGraceMs: number;
  readonly #tasks = new Map<string, SupervisedTask>();

  constructor(options: TaskRunnerOptions) {
    this.#sink = options.sink;
    this.#logger = options.logger;
    this.#killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  }

  /** True until the task with this id has ended (a task stopped for a restart has not). */
  has(taskId: string): boolean {
    return this.#tasks.has(taskId);
  }

  /** Reports a task as not started: `message` as one stderr line, then exit 125. */
  refuse(taskId: string, message: string): void {
    this.#logger.warn({ taskId }, 'task refused');
    sendOutput(this.#sink, taskId, 'stderr', Buffer.from(message.endsWith('\n') ? message : `${message}\n`));
    this.#sink.send({ type: 'exit', taskId, code: TASK_REFUSED_EXIT_CODE, signal: null });
  }

  /** Starts a task; its output and exit reach the sink. */
  run(spec: TaskSpec): void {
    const { taskId } = spec;
    if (spec.argv.length === 0) {
      this.refuse(taskId, 'credfwd-agent: the task has an empty argv');
      return;
    }
    if (this.#tasks.has(taskId)) {
      // An exit frame here would tell the coordinator the running task ended.
      this.#logger.warn({ taskId }, 'task id already running; duplicate run ignored');
      return;
    }
    const task = new SupervisedTask(spec, {
      sink: this.#sink,
      logger: this.#logger,
      killGraceMs: this.#killGraceMs,
      ended: (id) => this.#tasks.delete(id),
    });
    this.#tasks.set(taskId, task);
    task.start();
  }

  /** Tells every task that newer credentials are held; each acts as its `onRefresh` says. */
  refresh(): void {
    for (const task of [...this.#tasks.values()]) task.refresh();
  }

  /** Ends every task (SIGTERM, then SIGKILL after the grace) and waits for their exits. */
  async killAll(): Promise<void> {
    const tasks = [...this.#tasks.values()];
    for (const task of tasks) task.stop();
    await Promise.all(tasks.map((task) => task.ended));
  }
}
