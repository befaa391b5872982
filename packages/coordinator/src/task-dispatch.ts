import { randomUUID } from 'node:crypto';
import type { Exit, OnRefresh, Output } from '@credfwd/shared';
import type { AgentSession } from './agent-session.ts';

/** One worker's outcome of a command. */
export interface WorkerResult {
  worker: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Streams output as it arrives, for long-running commands. */
export type OutputListener = (worker: string, stream: 'stdout' | 'stderr', chunk: string) => void;

/** Output kept per stream per worker; the rest is dropped with a marker so a chatty task cannot exhaust memory. */
export const MAX_KEPT_OUTPUT_CHARS = 8 * 1024 * 1024;

interface PendingTask {
  session: AgentSession;
  worker: string;
  stdout: string;
  stderr: string;
  onOutput: OutputListener | undefined;
  resolve(result: WorkerResult): void;
}

function append(kept: string, chunk: string): string {
  if (kept.length >= MAX_KEPT_OUTPUT_CHARS) return kept;
  const next = kept + chunk;
  return next.length > MAX_KEPT_OUTPUT_CHARS ? `${next.slice(0, MAX_KEPT_OUTPUT_CHARS)}\n[credfwd: output truncated]\n` : next;
}

/**
 * Tracks tasks sent to agents until their `exit`. Frames are matched to the
 * session that started the task, so an agent cannot report on another's.
 */
export class TaskDispatch {
  readonly #tasks = new Map<string, PendingTask>();

  /** Starts argv on one agent and resolves with its result (never rejects). */
  async start(session: AgentSession, argv: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; onRefresh?: OnRefresh; onOutput?: OutputListener }): Promise<WorkerResult> {
    const taskId = randomUUID();
    const worker = session.agentId ?? 'unknown';
    const done = new Promise<WorkerResult>((resolve) => {
      this.#tasks.set(taskId, { session, worker, stdout: '', stderr: '', onOutput: options.onOutput, resolve });
    });
    try {
      await session.run(taskId, argv, options);
    } catch (err) {
      this.#finish(taskId, null, null, `credfwd: could not start the command: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return done;
  }

  /** Applies an `output` or `exit` frame; frames for another session's task are ignored. */
  accept(session: AgentSession, message: Output | Exit): boolean {
    const task = this.#tasks.get(message.taskId);
    if (!task || task.session !== session) return false;
    if (message.type === 'output') {
      task[message.stream] = append(task[message.stream], message.chunk);
      task.onOutput?.(task.worker, message.stream, message.chunk);
    } else {
      this.#finish(message.taskId, message.code, message.signal);
    }
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
    if (note) task.onOutput?.(task.worker, 'stderr', note);
    task.resolve({ worker: task.worker, exitCode, signal, stdout: task.stdout, stderr: note ? task.stderr + note : task.stderr });
  }
}
