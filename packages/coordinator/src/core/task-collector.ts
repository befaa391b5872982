import type { Output } from '@credfwd/shared';
import { KeptOutput } from './kept-output.ts';
import { workerResult, type OutputListener, type WorkerResult } from './worker-result.ts';

/**
 * One task's output as its frames arrive, and the worker's result once it
 * exits: how every deployment collects a run, whichever connection or
 * replica the frames come through.
 */
export class TaskCollector {
  readonly worker: string;
  readonly #stdout = new KeptOutput();
  readonly #stderr = new KeptOutput();
  readonly #onOutput: OutputListener | undefined;

  constructor(worker: string, onOutput?: OutputListener) {
    this.worker = worker;
    this.#onOutput = onOutput;
  }

  /** Keeps an `output` frame's bytes and streams them to the listener; returns the listener's promise when it asks to be waited for. */
  output(message: Output): Promise<unknown> | undefined {
    return this.#append(message.stream, Buffer.from(message.data, 'base64'));
  }

  /** credfwd's own word on the task's stderr: why it ended without an exit from its agent. */
  note(text: string): void {
    this.#append('stderr', Buffer.from(text));
  }

  /** The worker's result with everything kept so far. */
  result(exitCode: number | null, signal: string | null): WorkerResult {
    return workerResult(this.worker, exitCode, signal, this.#stdout.bytes(), this.#stderr.bytes());
  }

  #append(stream: 'stdout' | 'stderr', chunk: Buffer): Promise<unknown> | undefined {
    (stream === 'stdout' ? this.#stdout : this.#stderr).append(chunk);
    const busy: unknown = this.#onOutput?.(this.worker, stream, chunk);
    // Anything but a promise (a plain JavaScript listener may return what it likes) asks for nothing.
    return busy instanceof Promise ? busy : undefined;
  }
}
