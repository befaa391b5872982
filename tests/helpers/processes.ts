import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** How a child process ended and everything it wrote. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Gathers a child's stdout and stderr (when piped) and resolves once it has
 * exited and both streams are drained; rejects if it could not be spawned.
 * Call it right after `spawn`, before any output can be missed.
 */
export function collectOutput(child: ChildProcess): Promise<ProcessResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': only 'close' waits until the pipes hold no more output.
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Parent pid and state of a process from /proc/PID/stat, or null if it is gone. */
function readStat(pid: number): { ppid: number; state: string } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // exited between listing /proc and reading it
  }
  // The command name (field 2) is in parentheses and may itself hold spaces and
  // parentheses, so fields are counted from the last ')'.
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return state && ppid ? { ppid: Number(ppid), state } : null;
}

/**
 * Every live descendant of `pid` (children, grandchildren, …) read from /proc,
 * for "no process left behind" assertions. Zombies are left out: they no
 * longer run, and their parent reaps them as it exits. Linux only.
 */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat || stat.state === 'Z') continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(Number(entry));
    children.set(stat.ppid, siblings);
  }
  const found: number[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const child of children.get(next) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found.sort((a, b) => a - b);
}

/** True while `pid` runs; a zombie has stopped running and only waits for its parent to reap it. */
export function isRunning(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z';
}

/**
 * The pids of `pids` still running once all have stopped or `graceMs` has
 * passed. A process signalled to stop dies a moment after whoever signalled
 * it moves on; an orphan would run on for minutes, so a short grace tells the
 * two apart without a fixed sleep.
 */
export async function stillRunningAfter(pids: number[], graceMs = 3000): Promise<number[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const running = pids.filter(isRunning);
    if (running.length === 0 || Date.now() >= deadline) return running;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Like {@link stillRunningAfter}, and SIGKILLs the survivors on the spot, while
 * their pids are surely still theirs: a test that kills what it found left
 * behind later (in an after hook) could hit whatever process reused the pid.
 */
export async function killedIfRunningAfter(pids: number[], graceMs = 3000): Promise<number[]> {
  const survivors = await stillRunningAfter(pids, graceMs);
  for (const pid of survivors) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited since the check.
    }
  }
  return survivors;
}
