import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Environment variable that marks every process of one task run. Processes
 * inherit it through fork and exec whatever process group or session they
 * move to (`&`, `nohup`, a double fork, `setsid`), so the agent finds them by
 * it at stop. Not a secret: it only names the run, and is random so that one
 * run's mark cannot be mistaken for another's.
 */
export const TASK_MARK_VARIABLE = 'CREDFWD_TASK_MARK';

// How often a stop looks again for processes that have not gone yet.
const POLL_MS = 25;
// How long processes sent SIGKILL may take to vanish before the stop gives up on them (zombies nobody reaps).
const KILL_WAIT_MS = 2_000;

/** A fresh mark for one task run. */
export function newTaskMark(): string {
  return randomBytes(16).toString('base64url');
}

/** What {@link stopTaskProcesses} stops. */
export interface TaskProcessesTarget {
  /** The run's mark, as {@link TASK_MARK_VARIABLE} holds it. */
  mark: string;
  /** The run's process group (its first process's pid), which catches marked processes that dropped their environment but not the group. */
  groupId: number;
  /** Time between SIGTERM and SIGKILL. */
  graceMs: number;
}

/** What a stop found: processes it signalled, and those still there when it gave up. */
export interface TaskProcessesStop {
  signalled: number;
  survivors: number[];
}

/**
 * Stops every process of a task run: SIGTERM to its process group and to
 * every process of this user whose environment holds the run's mark, SIGKILL
 * to whatever is left after the grace; resolves once none is left (or they
 * outlived the SIGKILL by {@link KILL_WAIT_MS}). It looks again on every poll,
 * so a process forked while the stop runs is caught too.
 *
 * Reading `/proc/PID/environ` is Linux's way; where `/proc` is missing, only
 * the process group is stopped, and processes that left it (`setsid`) escape.
 * A process that clears its environment (`env -i`) and leaves the group
 * escapes everywhere: only a cgroup would hold it.
 */
export async function stopTaskProcesses(target: TaskProcessesTarget): Promise<TaskProcessesStop> {
  const signalled = new Set<number>();
  const killAt = Date.now() + target.graceMs;
  let giveUpAt: number | undefined;
  for (;;) {
    const pids = await markedPids(target.mark);
    if (pids.length === 0 && !(await groupRuns(target.groupId))) return { signalled: signalled.size, survivors: [] };
    const now = Date.now();
    if (giveUpAt !== undefined && now >= giveUpAt) return { signalled: signalled.size, survivors: pids };
    const signal = now >= killAt ? 'SIGKILL' : 'SIGTERM';
    if (signal === 'SIGKILL') giveUpAt ??= now + KILL_WAIT_MS;
    // SIGTERM once per process: a handler that cleans up should not be interrupted by another.
    if (signal === 'SIGKILL' || !signalled.has(-target.groupId)) signalGroup(target.groupId, signal);
    signalled.add(-target.groupId);
    for (const pid of pids) {
      if (signal === 'SIGTERM' && signalled.has(pid)) continue;
      signalled.add(pid);
      signalProcess(pid, signal);
    }
    await delay(POLL_MS);
  }
}

/** Pids of the processes whose environment holds `mark`, among those whose environment this user may read. */
export async function markedPids(mark: string): Promise<number[]> {
  const entry = Buffer.from(`${TASK_MARK_VARIABLE}=${mark}\0`);
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const found = await Promise.all(names.filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid).map(async (name) => {
    try {
      const environ = await readFile(`/proc/${name}/environ`);
      // At the start of a variable only: another variable's value could hold the same text.
      return environ.subarray(0, entry.length).equals(entry) || environ.includes(Buffer.concat([Buffer.of(0), entry])) ? Number(name) : undefined;
    } catch {
      // Gone meanwhile, or another user's (EACCES): neither is ours to stop.
      return undefined;
    }
  }));
  return found.filter((pid) => pid !== undefined);
}

/**
 * True while a process of the group runs. A group of zombies still takes
 * signals, and zombies wait for a parent that may never reap them (an init
 * that does not), so /proc tells which still run; without /proc, any member counts.
 */
async function groupRuns(groupId: number): Promise<boolean> {
  if (!signalGroup(groupId, 0)) return false;
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return true;
  }
  const states = await Promise.all(names.filter((name) => /^\d+$/.test(name)).map(async (name) => {
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'latin1');
      // Fields after the command name, which is in parentheses and may hold anything: state, ppid, pgrp.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(pgrp) === groupId && state !== 'Z';
    } catch {
      return false;
    }
  }));
  return states.includes(true);
}

/** Sends `signal` (0: only checks) to a process group; false when the group is gone. */
function signalGroup(groupId: number, signal: NodeJS.Signals | 0): boolean {
  return signalProcess(-groupId, signal);
}

function signalProcess(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    // ESRCH: gone. EPERM: not ours to signal (a setuid program), so nothing the agent could stop or wait for.
    return false;
  }
}
