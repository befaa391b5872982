import { readFileSync } from 'node:fs';
import { descendantPids } from './processes.ts';

/** How far a process has written, and whether it sleeps (state S), from /proc; null once it is gone. */
function writeState(pid: number): { written: number; sleeping: boolean } | null {
  try {
    const written = Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? Number.NaN);
    const state = /\) (\S) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    return { written, sleeping: state === 'S' };
  } catch {
    return null;
  }
}

/**
 * Resolves once `count` processes named `comm` below `root` (writers such as
 * `seq`, that do nothing but write) all sleep without having written a byte
 * over `polls` checks `everyMs` apart: whoever reads their output has
 * stopped. Rejects with `message` if that is not seen by `deadlineMs`, or
 * once fewer than `count` are left (they finished: nothing held them back).
 * Linux only.
 */
export async function writersBlocked(root: number, comm: string, count: number, message: string, deadlineMs = 60_000, polls = 5, everyMs = 100): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  const seen = new Map<number, { written: number; still: number }>();
  let found = 0;
  for (;;) {
    const pids = descendantPids(root).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });
    found = Math.max(found, pids.length);
    if (found === count && pids.length < count) throw new Error(`${message}: ${comm} finished without ever being held back`);
    let blocked = 0;
    for (const pid of pids) {
      const state = writeState(pid);
      const last = seen.get(pid);
      const still = state?.sleeping && last?.written === state.written ? last.still + 1 : 0;
      if (state) seen.set(pid, { written: state.written, still });
      if (still >= polls) blocked += 1;
    }
    if (pids.length === count && blocked === count) return;
    if (Date.now() >= deadline) throw new Error(`${message} (within ${deadlineMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A process's peak resident memory so far (VmHWM), in KiB; 0 once it is gone. */
export function peakRssKiB(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
