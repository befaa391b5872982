import { fileURLToPath } from 'node:url';
import { spawnTracked, spawnWorker } from './lib/children.ts';
import { sleep } from './lib/deadline.ts';
import { residentBytes } from './lib/real-agent.ts';

const REFERENCE = fileURLToPath(new URL('./tls-reference.ts', import.meta.url));

/** What the runtime costs before credfwd adds anything: the floors under the memory targets. */
export interface MemoryFloorResult {
  connections: number;
  /** RSS per idle connection of a bare node:tls server, bytes. */
  tlsPerConnectionBytes: number;
  /** VmRSS of an idle `node` that has loaded nothing, bytes. */
  bareNodeBytes: number;
}

/** Server RSS per idle connection of a bare node:tls server holding `connections`. */
async function tlsPerConnection(connections: number): Promise<number> {
  const server = spawnWorker(REFERENCE, { execArgv: ['--expose-gc'] });
  const client = spawnWorker(REFERENCE);
  try {
    const port = await server.call<number>('listen');
    const before = await server.call<number>('rss');
    await client.call('open', { port, count: connections });
    const after = await server.call<number>('rss');
    return (after - before) / connections;
  } finally {
    await client.stop();
    await server.stop();
  }
}

/** VmRSS of `node` doing nothing, read after the same idle time as the agent's. */
async function bareNode(idleMs: number): Promise<number> {
  const idle = spawnTracked(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], {});
  try {
    await sleep(idleMs);
    if (idle.child.pid === undefined) throw new Error('node did not start');
    return await residentBytes(idle.child.pid);
  } finally {
    await idle.stop();
  }
}

/** Measures both floors on this machine. */
export async function runMemoryFloor(connections: number, idleMs: number): Promise<MemoryFloorResult> {
  return { connections, tlsPerConnectionBytes: await tlsPerConnection(connections), bareNodeBytes: await bareNode(idleMs) };
}
