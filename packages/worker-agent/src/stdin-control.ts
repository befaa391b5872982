import type { Readable } from 'node:stream';

/** The line a launcher writes to ask an agent started with `--outlive-stdin` to stop. */
export const STOP_LINE = 'stop';

/** Longest line kept while looking for {@link STOP_LINE}; anything longer is not it. */
const MAX_LINE_BYTES = 64;

/** What a {@link StdinControl} reads and whom it tells. */
export interface StdinControlOptions {
  /** The agent's stdin, after the join string was taken from it. */
  input: Readable;
  /** Called once, on a line `stop`: the launcher ends its cluster. */
  onStop(): void;
  /** Called once when stdin ends: only the link carrying it is gone, the agent keeps running. */
  onEnd(): void;
}

/**
 * Stdin of an agent started over SSH with `--outlive-stdin`. There, the end
 * of stdin only means the SSH session ended, which a dropped link does as
 * well as a dead launcher: the agent must keep serving and wait for the
 * launcher to re-establish the tunnel, its life bounded by revocation and
 * `--give-up-after` instead. While the session lives, the launcher can still
 * stop the agent at once (an interrupted start-up, before it ever joined, is
 * the case revocation cannot reach) by writing `stop`.
 */
export class StdinControl {
  readonly #options: StdinControlOptions;
  #line = '';
  #closed = false;

  constructor(options: StdinControlOptions) {
    this.#options = options;
  }

  /** Starts reading; idempotent with close(). */
  start(): void {
    if (this.#closed) return;
    const { input } = this.#options;
    input.setEncoding('utf8');
    input.on('data', this.#data);
    input.once('end', this.#ended);
    input.once('close', this.#ended);
    // ECONNRESET and the like: the session is just as gone. The no-op stays, so a late error cannot crash the agent.
    input.on('error', discard);
    input.once('error', this.#ended);
    if (input.readableEnded || input.destroyed) queueMicrotask(this.#ended);
    else input.resume();
  }

  /** Stops reading; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { input } = this.#options;
    input.off('data', this.#data);
    input.off('end', this.#ended);
    input.off('close', this.#ended);
    input.off('error', this.#ended);
    input.pause();
  }

  readonly #data = (chunk: string): void => {
    for (const char of chunk) {
      if (char !== '\n') {
        if (this.#line.length <= MAX_LINE_BYTES) this.#line += char;
        continue;
      }
      const line = this.#line.trim();
      this.#line = '';
      if (line === STOP_LINE && !this.#closed) {
        this.close();
        this.#options.onStop();
        return;
      }
    }
  };

  readonly #ended = (): void => {
    if (this.#closed) return;
    this.close();
    this.#options.onEnd();
  };
}

function discard(): void {}
