/**
 * The floor under the coordinator's memory per agent: a bare `node:tls`
 * server (the same kind of P-256 self-signed certificate, no websocket, no
 * credfwd) and a client process holding many idle connections to it, each
 * having echoed one small message. Driven by bench/run.ts over IPC.
 */
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createSelfSignedIdentity } from '@credfwd/coordinator';
import { serve } from './lib/worker-side.ts';
import { sleep } from './lib/deadline.ts';
import { forEachLimited } from './lib/pool.ts';

/** About the size of a credentials push, so buffers grow as they do for a real connection. */
const MESSAGE = 'x'.repeat(1_200);
const CONCURRENCY = 32;

let server: Server | undefined;
const clients: TLSSocket[] = [];

async function listen(): Promise<number> {
  const tls = await createSelfSignedIdentity();
  const s = createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server = s;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

async function rss(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    globalThis.gc?.();
    await sleep(200);
  }
  return process.memoryUsage().rss;
}

function openOne(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => socket.write(MESSAGE));
    socket.once('data', () => resolve());
    socket.once('error', reject);
    clients.push(socket);
  });
}

function open(params: { port: number; count: number }): Promise<void> {
  return forEachLimited(params.count, CONCURRENCY, () => openOne(params.port));
}

serve({
  listen: () => listen(),
  rss: () => rss(),
  open: (params) => open(params as { port: number; count: number }),
  exit: () => {
    server?.close();
    setImmediate(() => process.exit(0));
  },
});
