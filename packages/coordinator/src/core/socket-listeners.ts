import type { RawData, WebSocket } from 'ws';

/** What an owner does with its socket's events; binary frames arrive as undefined data. */
export interface SocketHandlers<T> {
  message(owner: T, data: RawData | undefined): void;
  error(owner: T, err: Error): void;
  close(owner: T): void;
}

/**
 * Listeners shared by every socket of one kind of owner: ws calls a listener
 * with its socket as `this`, and the owner is found from it. Three closures
 * (and their context) per socket would otherwise be held for as long as the
 * socket stays open, thousands of times over.
 */
export class SocketListeners<T extends object> {
  readonly #owners = new WeakMap<WebSocket, T>();
  readonly #message: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  readonly #error: (this: WebSocket, err: Error) => void;
  readonly #close: (this: WebSocket) => void;

  constructor(handlers: SocketHandlers<T>) {
    const owners = this.#owners;
    this.#message = function onMessage(data, isBinary) {
      const owner = owners.get(this);
      if (owner) handlers.message(owner, isBinary ? undefined : data);
    };
    this.#error = function onError(err) {
      const owner = owners.get(this);
      if (owner) handlers.error(owner, err);
    };
    this.#close = function onClose() {
      const owner = owners.get(this);
      if (owner) handlers.close(owner);
    };
  }

  /** Routes the socket's message, error and close events to this owner. */
  attach(socket: WebSocket, owner: T): void {
    this.#owners.set(socket, owner);
    socket.on('message', this.#message);
    socket.on('error', this.#error);
    socket.on('close', this.#close);
  }
}
