import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { spawnTracked, type Tracked } from './children.ts';

/** The `credfwd-agent` executable, through the worker-agent package's public `./bin` export. */
const AGENT_BIN = createRequire(import.meta.url).resolve('@credfwd/worker-agent/bin');

/**
 * Starts a real `credfwd-agent join` as a worker would: the join string in
 * CREDFWD_JOIN (never argv), a minimal environment, warnings only on stderr.
 */
export function spawnRealAgent(joinString: string, agentId: string): Tracked {
  return spawnTracked(process.execPath, [AGENT_BIN, 'join'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      CREDFWD_JOIN: joinString,
      CREDFWD_AGENT_ID: agentId,
      CREDFWD_LOG_LEVEL: 'warn',
    },
  });
}

/** Resident set size of a process from /proc/PID/status (VmRSS), in bytes. Linux only. */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(kb) * 1024;
}
