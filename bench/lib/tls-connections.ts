import { fileURLToPath } from 'node:url';
import { spawnWorker, type Worker } from './children.ts';

const REFERENCE = fileURLToPath(new URL('../tls-reference.ts', import.meta.url));

/**
 * A bare node:tls server (bench/tls-reference.ts, which collects garbage
 * before it reads its RSS) holding `connections` from a client process of
 * its own: the floor under the coordinator's per-agent costs. `measure` gets
 * the server and its RSS before any connection; both processes stop after.
 */
export async function withTlsConnections<T>(connections: number, measure: (server: Worker, rssBefore: number) => Promise<T>): Promise<T> {
  const server = spawnWorker(REFERENCE, { execArgv: ['--expose-gc'] });
  const client = spawnWorker(REFERENCE);
  try {
    const port = await server.call<number>('listen');
    const rssBefore = await server.call<number>('rss');
    await client.call('open', { port, count: connections });
    return await measure(server, rssBefore);
  } finally {
    await client.stop();
    await server.stop();
  }
}
