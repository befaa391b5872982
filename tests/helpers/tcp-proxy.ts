import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A TCP relay whose link a test can cut and restore, standing in for a network outage. */
export interface TcpProxy {
  /** `127.0.0.1:PORT`, stable across cut/restore. */
  address: string;
  /** Drops every relayed connection and stops accepting, as an unreachable host would. */
  cut(): Promise<void>;
  /** Accepts connections again on the same port. */
  restore(): Promise<void>;
  /**
   * Keeps every connection open but silently drops all traffic, closes
   * included, as a dead route or a crashed middlebox does: a half-open link
   * that only heartbeats can notice.
   */
  blackhole(): void;
  /** Ends the blackhole: connections opened before it are dropped (their peers gave up on them), new ones relay again. */
  heal(): void;
  stop(): Promise<void>;
}

/** Relays 127.0.0.1:(ephemeral) to `target` (`HOST:PORT`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host = '127.0.0.1', port = '0'] = target.split(':');
  const sockets = new Set<Socket>();
  let dropping = false;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host, port: Number(port) });
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on('error', () => { if (!dropping) b.destroy(); });
      a.on('close', () => {
        sockets.delete(a);
        if (!dropping) b.destroy();
      });
      a.on('data', (chunk: Buffer) => { if (!dropping) b.write(chunk); });
    }
  });
  const listen = (p: number): Promise<number> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  const bound = await listen(0);
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    address: `127.0.0.1:${bound}`,
    cut: close,
    restore: async () => {
      await listen(bound);
    },
    stop: close,
    blackhole: () => {
      dropping = true;
    },
    heal: () => {
      for (const socket of sockets) socket.destroy();
      dropping = false;
    },
  };
}
