import { readFile } from 'node:fs/promises';
import { defaultAgentProgram } from '@credfwd/coordinator';
import { spawnTracked, type Tracked } from './children.ts';

/** The one-file agent and the Node options it is started with, as backends start it. */
const AGENT = defaultAgentProgram();

/**
 * Starts a real `credfwd-agent join` as a backend does: the join string in
 * CREDFWD_JOIN (never argv), a minimal environment, warnings only on stderr.
 */
export function spawnRealAgent(joinString: string, agentId: string): Tracked {
  return spawnTracked(process.execPath, [...AGENT.nodeArgs, AGENT.file, 'join'], {
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
