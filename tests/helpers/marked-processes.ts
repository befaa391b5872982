import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { stillRunningAfter } from './processes.ts';

/**
 * A variable to put in a launcher's environment: local agents inherit it
 * (their clean environment keeps everything but AWS_* and CREDFWD_*) and
 * workloads inherit it from their agent, so every process a launch started
 * carries it, even one re-parented to init after its parent died.
 */
export function processMark(): { name: string; env: Record<string, string> } {
  // Not CREDFWD_: the launcher strips its own prefix from what agents inherit.
  const name = `TESTMARK_${randomUUID().replaceAll('-', '')}`;
  return { name, env: { [name]: '1' } };
}

/** Pids of running processes whose environment holds the mark's variable (Linux, same user or root). */
export function markedPids(markName: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    if (environ.split('\0').some((pair) => pair.startsWith(`${markName}=`))) found.push(Number(entry));
  }
  return found;
}

/**
 * Marked processes still running once all stopped or `graceMs` passed: the
 * orphans of a launch. Zombies do not count; see {@link stillRunningAfter}.
 */
export async function markedLeftAfter(markName: string, graceMs = 5000): Promise<number[]> {
  return stillRunningAfter(markedPids(markName), graceMs);
}
