import { spawn, type ChildProcess } from 'node:child_process';
import { CredfwdError, cleanLauncherEnv } from '@credfwd/shared';
import { launchAborted } from '../../core/index.ts';
import type { SshHost } from './ssh-host.ts';

/** How every `ssh` of a launch runs: the user's config and options, ours only where safe. */
export interface SshSettings {
  /** `ssh -F`; the user's own config when absent. */
  configFile?: string;
  /** `ssh -o` each, before credfwd's own defaults, so they win over them (ssh keeps the first value it reads). */
  options?: readonly string[];
  connectTimeoutSeconds: number;
}

/**
 * The argv of one `ssh` to `host` running `remoteCommand`. BatchMode comes
 * first so nothing can turn prompting back on: a launcher must never hang on
 * a password or a host key question. Host key checking is left to the user's
 * config. The user's SSH agent is not forwarded: workloads on the host must
 * not be able to use the launcher's keys.
 */
export function sshArgv(settings: SshSettings, host: SshHost, extra: readonly string[], remoteCommand: string): string[] {
  return [
    ...(settings.configFile === undefined ? [] : ['-F', settings.configFile]),
    '-o', 'BatchMode=yes',
    ...(settings.options ?? []).flatMap((option) => ['-o', option]),
    '-o', `ConnectTimeout=${settings.connectTimeoutSeconds}`,
    '-o', 'ForwardAgent=no',
    '-o', 'ForwardX11=no',
    ...extra,
    ...(host.port === undefined ? [] : ['-p', String(host.port)]),
    '--', host.destination, remoteCommand,
  ];
}

/**
 * Spawns `ssh`. Its environment is the launcher's minus AWS_* and credfwd
 * secrets, so a `SendEnv AWS_*` in someone's config cannot carry the
 * launcher's keys to a host.
 */
export function spawnSsh(argv: string[], signal?: AbortSignal): ChildProcess {
  return spawn('ssh', argv, { env: cleanLauncherEnv(process.env), stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal, killSignal: 'SIGKILL' as const } : {}) });
}

export interface SshOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs one short `ssh` to completion with `input` on its stdin, killed at the deadline or on abort. */
export function runSsh(argv: string[], input: Buffer | string, timeoutMs: number, host: SshHost, signal?: AbortSignal): Promise<SshOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawnSsh(argv, signal);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-16_384); });
    // The outcome is read from the exit status and stderr; a stdin closed early is one of its symptoms, not the error.
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new CredfwdError('SSH_UNREACHABLE', `${host.name} did not answer over SSH within ${Math.round(timeoutMs / 1000)} s`, `check that ${host.name} is up and responsive: ssh ${host.name} true`, { retryable: true }));
    }, timeoutMs);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.name === 'AbortError' && signal ? launchAborted(signal) : sshMissing(err));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The OpenSSH client could not be started at all. */
export function sshMissing(err: NodeJS.ErrnoException): CredfwdError {
  return err.code === 'ENOENT'
    ? new CredfwdError('SSH_FAILED', 'the OpenSSH client (ssh) is not installed on this machine', 'install openssh-client; credfwd uses your own ssh, its config and keys', { cause: err })
    : new CredfwdError('SSH_FAILED', `cannot run ssh: ${err.code ?? err.message}`, 'check that ssh runs from this shell', { cause: err });
}

