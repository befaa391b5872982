import { randomUUID } from 'node:crypto';
import type { Exit, OnRefresh, Output } from '@credfwd/shared';
import type { AgentSession } from './agent-session.ts';
import { KeptOutput } from './kept-output.ts';

/** One worker's outcome of a command. */
export interface WorkerResult {
  worker: string;
  exitCode: number | null;
  signal: string | null;
  /** The output as UTF-8 text, for convenience: bytes that are not UTF-8 read as U+FFFD here, never in `stdoutBytes`. */
  stdout: string;
  stderr: string;
  /** The output exactly as the command wrote it (up to MAX_KEPT_OUTPUT_BYTES per stream). */
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
}

/** Streams output as it arrives, for long-running commands: the exact bytes, in chunks cut anywhere (even inside a character). */
export type OutputListener = (worker: string, stream: 'stdout' | 'stderr', chunk: Buffer) => void;

/** A worker's result from its output bytes; the text fields are decoded from them. */
export function workerResult(worker: string, exitCode: number | null, signal: string | null, stdoutBytes: Buffer, stderrBytes: Buffer): WorkerResult {
  return { worker, exitCode, signal, stdout: stdoutBytes.toString('utf8'), stderr: stderrBytes.toString('utf8'), stdoutBytes, stderrBytes };
}

interface PendingTask {
  session: AgentSession;
  worker: string;
  stdout: KeptOutput;
  stderr: KeptOutput;
  onOutput: OutputListener | undefined;
  resolve(result: WorkerResult): void;
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
      this.#tasks.set(taskId, { session, worker, stdout: new KeptOutput(), stderr: new KeptOutput(), onOutput: options.onOutput, resolve });
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
      const chunk = Buffer.from(message.data, 'base64');
      task[message.stream].append(chunk);
      task.onOutput?.(task.worker, message.stream, chunk);
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
    if (note) {
      const bytes = Buffer.from(note);
      task.stderr.append(bytes);
      task.onOutput?.(task.worker, 'stderr', bytes);
    }
    task.resolve(workerResult(task.worker, exitCode, signal, task.stdout.bytes(), task.stderr.bytes()));
  }
}
