import type { WebSocket } from 'ws';

/** What a heartbeat needs of its owner: the sockets to watch. */
export interface HeartbeatContext {
  sockets(): Iterable<WebSocket>;
}

/**
 * Pings every socket each interval and terminates those that neither
 * answered the previous ping nor sent anything else since: a peer silent for
 * two intervals is gone, even when the link dropped traffic without closing
 * (half-open). Any frame counts, because a peer's pong queues behind the
 * output it is still sending: a busy peer is alive.
 */
export class Heartbeat {
  readonly #context: HeartbeatContext;
  readonly #intervalMs: number;
  readonly #alive = new WeakMap<WebSocket, boolean>();
  #timer: NodeJS.Timeout | undefined;

  constructor(context: HeartbeatContext, intervalMs: number) {
    this.#context = context;
    this.#intervalMs = intervalMs;
  }

  /** Starts watching a socket; it counts as alive until its first missed ping. */
  track(socket: WebSocket): void {
    const alive = (): void => {
      this.#alive.set(socket, true);
    };
    alive();
    socket.on('pong', alive);
    socket.on('message', alive);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#beat(), this.#intervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #beat(): void {
    for (const socket of this.#context.sockets()) {
      if (this.#alive.get(socket) === false) {
        socket.terminate();
        continue;
      }
      this.#alive.set(socket, false);
      socket.ping();
    }
  }
}
