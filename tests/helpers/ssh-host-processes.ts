import { readdir, readFile } from 'node:fs/promises';
import type { SshHost } from './ssh-hosts.ts';

/** What /proc shows of one process on a test host (NUL-separated argv and environment). */
export interface HostProcess {
  host: string;
  pid: number;
  cmdline: string;
  environ: string;
}

/** A process's argv and environment as /proc shows them (NUL-separated), or undefined once it is gone. */
export async function processTexts(pid: number): Promise<{ pid: number; cmdline: string; environ: string } | undefined> {
  try {
    const [cmdline, environ] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/environ`, 'utf8')]);
    return { pid, cmdline, environ };
  } catch {
    return undefined;
  }
}

/** Polls `done` every 50 ms until it holds; throws `message` once `timeoutMs` have passed. */
export async function pollUntil(done: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${message} (within ${timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The `ssh` client processes on this side that use `configFile`: one per open session. */
export async function localSshProcesses(configFile: string): Promise<{ pid: number; cmdline: string; environ: string }[]> {
  const found = [];
  for (const entry of await readdir('/proc')) {
    const texts = /^\d+$/.test(entry) ? await processTexts(Number(entry)) : undefined;
    if (texts?.cmdline.startsWith('ssh\0') && texts.cmdline.includes(configFile)) found.push(texts);
  }
  return found;
}

/**
 * Polls until no host has a process but its sshd (of those `counted`
 * picks), or the deadline passes; returns what is left (host and argv),
 * empty when nothing is.
 */
export async function leftoverProcesses(hosts: readonly SshHost[], timeoutMs: number, counted: (cmdline: string) => boolean = () => true): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left: string[] = [];
    for (const host of hosts) {
      for (const pid of await host.processes()) {
        const texts = await processTexts(pid);
        const cmdline = texts?.cmdline.replaceAll('\0', ' ');
        if (cmdline !== undefined && counted(cmdline)) left.push(`${host.alias} pid ${pid}: ${cmdline.slice(0, 200)}`);
      }
    }
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Every process on the hosts, their sshd listeners included, with argv and
 * environment: what a secret scan must look through. Processes that exit
 * while being read are left out.
 */
export async function hostProcesses(hosts: readonly SshHost[]): Promise<HostProcess[]> {
  const found: HostProcess[] = [];
  for (const host of hosts) {
    for (const pid of [host.sshdPid, ...await host.processes()]) {
      const texts = await processTexts(pid);
      if (texts) found.push({ host: host.alias, ...texts });
    }
  }
  return found;
}
