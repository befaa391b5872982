/**
 * The floors under the coordinator's memory and CPU per agent: a bare
 * `node:tls` server (the same kind of P-256 self-signed certificate, no
 * websocket, no credfwd) and a client process holding many idle connections
 * to it, each having echoed one small message. On `push` the server does
 * the least a refresh must: per connection one AES-256-GCM seal of the
 * credentials into a compact JWE and one TLS write of the websocket frame
 * carrying it. Driven by bench/run.ts over IPC.
 */
import { createCipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createSelfSignedIdentity } from '@credfwd/coordinator';
import { serve } from './lib/worker-side.ts';
import { collectAllGarbage } from './lib/collect-garbage.ts';
import { forEachLimited } from './lib/pool.ts';

/** About the size of a credentials push, so buffers grow as they do for a real connection. */
const MESSAGE = 'x'.repeat(1_200);
const CONCURRENCY = 32;

let server: Server | undefined;
const clients: TLSSocket[] = [];
/** The server's end of each connection, with its session key imported once, as the coordinator does. */
const accepted: { socket: TLSSocket; key: KeyObject }[] = [];

async function listen(): Promise<number> {
  const tls = await createSelfSignedIdentity();
  const s = createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (socket) => {
    accepted.push({ socket, key: createSecretKey(randomBytes(32)) });
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server = s;
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

async function rss(): Promise<number> {
  await collectAllGarbage();
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

const JWE_HEADER = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM' })).toString('base64url');
const AAD = Buffer.from(JWE_HEADER, 'ascii');

function seal(key: KeyObject, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 }).setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${JWE_HEADER}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

/** An unmasked server-to-client text frame (RFC 6455), as a websocket server sends it. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, length]) : length < 65_536 ? Buffer.from([0x81, 126, length >> 8, length & 0xff]) : undefined;
  if (!header) throw new Error('a push frame over 64 KiB');
  return Buffer.concat([header, payload]);
}

/** CPU time (user + system, µs) of sealing `credentials` to every connection and writing each frame, until every write is done. */
async function push(params: { credentials: string; seq: number }): Promise<number> {
  const before = process.cpuUsage();
  await Promise.all(accepted.map(({ socket, key }) => {
    const frame = textFrame(JSON.stringify({ type: 'credentials', seq: params.seq, remainingSeconds: 3_600, refreshInSeconds: 3, jwe: seal(key, params.credentials) }));
    return new Promise<void>((resolve, reject) => socket.write(frame, (err) => (err ? reject(err) : resolve())));
  }));
  const cpu = process.cpuUsage(before);
  return cpu.user + cpu.system;
}

serve({
  listen: () => listen(),
  rss: () => rss(),
  open: (params) => open(params as { port: number; count: number }),
  accepted: () => accepted.length,
  push: (params) => push(params as { credentials: string; seq: number }),
  exit: () => {
    server?.close();
    setImmediate(() => process.exit(0));
  },
});
