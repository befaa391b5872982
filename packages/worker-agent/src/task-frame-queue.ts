import type { AgentMessage, Exit, Output } from '@credfwd/shared';
import type { TaskSink } from './task-sink.ts';

/** Above this many bytes not yet on the network, tasks stop reading their output. */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** Tasks read on once the backlog is below this. */
export const OUTPUT_LOW_WATER_BYTES = 256 * 1024;

/** The connection task frames leave by. */
export interface TaskFrameLink {
  /** Sends on the ready connection, calling `written` once the frame has left (or failed); false when there is none. */
  send(message: AgentMessage, written: () => void): boolean;
  /** Bytes handed to the connection but not yet written to the network; 0 without one. */
  bufferedAmount(): number;
}

/**
 * Task frames on their way to the coordinator, in order: sent at once while
 * a connection is ready and keeps up, held while there is none (until
 * {@link TaskFrameQueue.flush} on the next one). Its backlog, held and
 * buffered on the socket, is what tasks throttle their output on, so it stays
 * near {@link OUTPUT_HIGH_WATER_BYTES}: output is slowed down, never dropped,
 * and never queues far ahead of the heartbeat.
 */
export class TaskFrameQueue implements TaskSink {
  readonly #link: TaskFrameLink;
  readonly #held: Array<Output | Exit> = [];
  #heldBytes = 0;
  #drained: { promise: Promise<void>; resolve(): void } | undefined;

  constructor(link: TaskFrameLink) {
    this.#link = link;
  }

  send(message: Output | Exit): void {
    // Behind what is held, never ahead of it: a task's output must stay before its exit.
    if (this.#held.length === 0 && this.#link.send(message, () => this.#written())) return;
    this.#held.push(message);
    this.#heldBytes += sizeOf(message);
  }

  backlog(): Promise<void> | undefined {
    if (this.#drained) return this.#drained.promise;
    if (this.#backlogBytes() < OUTPUT_HIGH_WATER_BYTES) return undefined;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#drained = { promise, resolve };
    return promise;
  }

  /** Sends what was held for want of a connection; call once a new one is ready. */
  flush(): void {
    while (this.#held.length > 0) {
      const next = this.#held[0]!;
      if (!this.#link.send(next, () => this.#written())) break;
      this.#held.shift();
      this.#heldBytes -= sizeOf(next);
    }
    this.#written();
  }

  #backlogBytes(): number {
    return this.#heldBytes + this.#link.bufferedAmount();
  }

  #written(): void {
    if (!this.#drained || this.#backlogBytes() >= OUTPUT_LOW_WATER_BYTES) return;
    this.#drained.resolve();
    this.#drained = undefined;
  }
}

function sizeOf(message: Output | Exit): number {
  return message.type === 'output' ? message.data.length : 64;
}
