import type { Readable } from 'node:stream';

/** What a {@link LauncherLifeline} watches and whom it tells. */
export interface LauncherLifelineOptions {
  /** The read end of a pipe whose only write end the launcher holds: the agent's stdin. */
  input: Readable;
  /** Called once, when the pipe ends: the launcher is gone. */
  onLost(): void;
}

/**
 * Ties an agent's life to its launcher's. The launcher holds the write end
 * of the agent's stdin and never closes it; the kernel closes it when the
 * launcher dies, however it dies (SIGKILL, a crash, a closed terminal), so
 * end-of-file here is the one sign of the launcher's death that needs no
 * cooperation from it. Anything written after the join string is ignored.
 */
export class LauncherLifeline {
  readonly #input: Readable;
  readonly #onLost: () => void;
  #closed = false;

  constructor(options: LauncherLifelineOptions) {
    this.#input = options.input;
    this.#onLost = options.onLost;
  }

  /** Starts watching the pipe; reports at once if it has already ended. */
  start(): void {
    if (this.#closed) return;
    this.#input.on('data', discard);
    this.#input.once('end', this.#lost);
    this.#input.once('close', this.#lost);
    // ECONNRESET and the like: the launcher is just as gone. The no-op stays after close(), so a late error cannot crash an agent that is stopping its tasks.
    this.#input.on('error', discard);
    this.#input.once('error', this.#lost);
    if (this.#input.readableEnded || this.#input.destroyed) queueMicrotask(this.#lost);
    else this.#input.resume();
  }

  /** Stops watching; idempotent. The pipe stays open, so the launcher sees no premature end. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#input.off('data', discard);
    this.#input.off('end', this.#lost);
    this.#input.off('close', this.#lost);
    this.#input.off('error', this.#lost);
    this.#input.pause();
  }

  readonly #lost = (): void => {
    if (this.#closed) return;
    this.close();
    this.#onLost();
  };
}

function discard(): void {}
