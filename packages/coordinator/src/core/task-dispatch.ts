import { randomUUID } from 'node:crypto';
import { errorMessage, type Exit, type OnRefresh, type Output } from '@credfwd/shared';
import type { AgentSession } from './agent-session.ts';
import { TaskCollector } from './task-collector.ts';
import type { OutputListener, WorkerResult } from './worker-result.ts';

/** How a command runs on each worker. */
export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** For long-running commands: what the agent does when credentials are refreshed. */
  onRefresh?: OnRefresh;
  onOutput?: OutputListener;
}

interface PendingTask {
  session: AgentSession;
  collector: TaskCollector;
  resolve(result: WorkerResult): void;
}

/**
 * Tracks tasks sent to agents until their `exit`. Frames are matched to the
 * session that started the task, so an agent cannot report on another's.
 */
export class TaskDispatch {
  readonly #tasks = new Map<string, PendingTask>();

  /** Starts argv on one agent and resolves with its result (never rejects). */
  async start(session: AgentSession, argv: string[], options: RunOptions): Promise<WorkerResult> {
    const taskId = randomUUID();
    const collector = new TaskCollector(session.agentId ?? 'unknown', options.onOutput);
    const done = new Promise<WorkerResult>((resolve) => {
      this.#tasks.set(taskId, { session, collector, resolve });
    });
    try {
      await session.run(taskId, argv, options);
    } catch (err) {
      this.#finish(taskId, null, null, `credfwd: could not start the command: ${errorMessage(err)}\n`);
    }
    return done;
  }

  /** Applies an `output` or `exit` frame; frames for another session's task are ignored. */
  accept(session: AgentSession, message: Output | Exit): boolean {
    const task = this.#tasks.get(message.taskId);
    if (!task || task.session !== session) return false;
    if (message.type === 'output') {
      const listenerBusy = task.collector.output(message);
      if (listenerBusy) session.holdReading(listenerBusy);
    } else this.#finish(message.taskId, message.code, message.signal);
    return true;
  }

  /** Ends every task of a session that went away. */
  abandon(session: AgentSession): void {
    for (const [taskId, task] of this.#tasks) {
      if (task.session === session) this.#finish(taskId, null, null, 'credfwd: agent disconnected before the command finished\n');
    }
  }

  #finish(taskId: string, exitCode: number | null, signal: string | null, note?: string): void {
    const task = this.#tasks.get(taskId);
    if (!task) return;
    this.#tasks.delete(taskId);
    if (note) task.collector.note(note);
    task.resolve(task.collector.result(exitCode, signal));
  }
}
