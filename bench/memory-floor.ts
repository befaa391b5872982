import { spawnTracked } from './lib/children.ts';
import { sleep } from './lib/deadline.ts';
import { residentBytes } from './lib/real-agent.ts';
import { withTlsConnections } from './lib/tls-connections.ts';

/** What the runtime costs before credfwd adds anything: the floors under the memory targets. */
export interface MemoryFloorResult {
  connections: number;
  /** RSS per idle connection of a bare node:tls server, bytes. */
  tlsPerConnectionBytes: number;
  /** VmRSS of an idle `node` that has loaded nothing, bytes. */
  bareNodeBytes: number;
}

/** Server RSS per idle connection of a bare node:tls server holding `connections`. */
function tlsPerConnection(connections: number): Promise<number> {
  return withTlsConnections(connections, async (server, before) => ((await server.call<number>('rss')) - before) / connections);
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
