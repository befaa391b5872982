import { WebSocket } from 'ws';

/** How long closing waits for agents to answer close frames before it cuts their connections. */
export const CLOSE_FRAME_GRACE_MS = 2_000;

/**
 * Resolves once every socket that was sent a close frame has finished
 * closing, or after `graceMs`, whichever comes first. Cutting a connection
 * (`terminate()`) while its close frame is still queued loses the frame: the
 * agent would see a dropped link (1006) and reconnect until it gives up,
 * instead of learning that its cluster is gone.
 */
export function closeFramesDelivered(sockets: Iterable<WebSocket>, graceMs: number): Promise<void> {
  const closing = [...sockets].filter((socket) => socket.readyState === WebSocket.CLOSING);
  if (closing.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let open = closing.length;
    const timer = setTimeout(resolve, graceMs);
    for (const socket of closing) {
      socket.once('close', () => {
        if (--open > 0) return;
        clearTimeout(timer);
        resolve();
      });
    }
  });
}
