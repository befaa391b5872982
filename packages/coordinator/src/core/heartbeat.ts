import type { WebSocket } from 'ws';
import { monotonicMs } from '@credfwd/shared';

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
 *
 * A socket its owner paused (it holds the peer's output back) cannot read a
 * pong, so it is not judged until it reads again: a reader of the output may
 * stall for as long as it likes. It gets an unsolicited pong instead of a
 * ping, a one-way heartbeat (RFC 6455 5.5.3) that keeps the peer's watch
 * content and asks for no answer: answers that cannot be read pile up at the
 * peer, and ws drops a connection with 60 of them unsent.
 *
 * A beat that runs more than an interval late means this process stalled (a
 * long GC, a starved CPU), not that the peers went quiet: their answers may
 * be waiting unread, and a late timer runs before the socket is read again.
 * That beat judges nobody; it pings again, and the next beat judges, late or
 * not, so that a process stalling over and over still drops dead peers. The
 * agent's watch forgives its own stalls the same way.
 */
export class Heartbeat {
  readonly #context: HeartbeatContext;
  readonly #intervalMs: number;
  readonly #alive = new WeakMap<WebSocket, boolean>();
  // One listener for every socket (ws calls it with the socket as `this`): a closure per socket would be held per agent.
  readonly #markAlive: (this: WebSocket) => void;
  #timer: NodeJS.Timeout | undefined;
  #lastBeatAt = 0;
  #forgaveStall = false;

  constructor(context: HeartbeatContext, intervalMs: number) {
    this.#context = context;
    this.#intervalMs = intervalMs;
    const alive = this.#alive;
    this.#markAlive = function markAlive(this: WebSocket): void {
      alive.set(this, true);
    };
  }

  /** Starts watching a socket; it counts as alive until its first missed ping. */
  track(socket: WebSocket): void {
    this.#alive.set(socket, true);
    socket.on('pong', this.#markAlive);
    socket.on('message', this.#markAlive);
  }

  start(): void {
    if (this.#timer) return;
    this.#lastBeatAt = monotonicMs();
    this.#timer = setInterval(() => this.#beat(), this.#intervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #beat(): void {
    const now = monotonicMs();
    const stalled = now - this.#lastBeatAt > 2 * this.#intervalMs && !this.#forgaveStall;
    this.#forgaveStall = stalled;
    this.#lastBeatAt = now;
    for (const socket of this.#context.sockets()) {
      if (socket.isPaused) {
        this.#alive.set(socket, true);
        socket.pong();
        continue;
      }
      if (this.#alive.get(socket) === false && !stalled) {
        socket.terminate();
        continue;
      }
      this.#alive.set(socket, false);
      socket.ping();
    }
  }
}
