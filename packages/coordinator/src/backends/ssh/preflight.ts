import { CredfwdError } from '@credfwd/shared';
import { PROBE_PREFIX, PROBE_SCRIPT, remoteCommand } from './remote-scripts.ts';
import { runSsh, sshArgv, type SshSettings } from './ssh-command.ts';
import { SSH_FAILURE_STATUS, lastLines, sshFailure } from './ssh-errors.ts';
import type { SshHost } from './ssh-host.ts';

/** The oldest Node the one-file agent is built for. */
export const MIN_NODE_MAJOR = 20;

/** What a host offers the agent, as its probe found it. */
export interface HostProbe {
  host: SshHost;
  /** Absolute path of the host's `node`: the one checked is the one started. */
  node: string;
  /** `v20.11.1`. */
  nodeVersion: string;
  /** The remote user's cache directory for credfwd. */
  cacheDir: string;
  /** Whether `agent-<sha256>.mjs` with that very hash is already there. */
  cached: boolean;
}

/**
 * Probes one host with one short ssh command: reachability, host key and
 * login are proven by it succeeding; its output says which node runs there
 * and whether the agent must be uploaded.
 */
export async function probeHost(settings: SshSettings, host: SshHost, agentSha256: string, signal?: AbortSignal): Promise<HostProbe> {
  const timeoutMs = (settings.connectTimeoutSeconds + 20) * 1000;
  const outcome = await runSsh(sshArgv(settings, host, ['-T'], remoteCommand(PROBE_SCRIPT, [agentSha256])), '', timeoutMs, host, signal);
  if (outcome.code === SSH_FAILURE_STATUS) throw sshFailure(host, outcome.stderr);
  const answer = new Map<string, string>();
  for (const line of outcome.stdout.split('\n')) {
    if (!line.startsWith(PROBE_PREFIX)) continue;
    const [key = '', ...value] = line.slice(PROBE_PREFIX.length).split('=');
    answer.set(key, value.join('='));
  }
  const cacheDir = answer.get('dir');
  if (outcome.code !== 0 || !cacheDir) {
    throw new CredfwdError('SSH_FAILED', `the probe of ${host.name} failed (exit ${outcome.code ?? outcome.signal})${lastLines(outcome.stderr) ? `: ${lastLines(outcome.stderr)}` : ''}`, `check that ${host.name} has a POSIX /bin/sh: ssh ${host.name} /bin/sh -c true`);
  }
  const node = answer.get('node') ?? '';
  const nodeVersion = answer.get('version') ?? '';
  checkNode(host, node, nodeVersion);
  return { host, node, nodeVersion, cacheDir, cached: answer.get('cached') === 'yes' };
}

function checkNode(host: SshHost, node: string, version: string): void {
  const hint = `install Node.js ${MIN_NODE_MAJOR} or later on ${host.name}, on the PATH its SSH sessions get (ssh ${host.name} 'command -v node')`;
  if (node === '') throw new CredfwdError('REMOTE_NODE_MISSING', `${host.name} has no node on the PATH of its SSH sessions`, hint);
  if (version === '') throw new CredfwdError('REMOTE_NODE_MISSING', `node on ${host.name} (${node}) does not run`, hint);
  const major = /^v(\d+)\./.exec(version)?.[1];
  if (major === undefined || Number(major) < MIN_NODE_MAJOR) {
    throw new CredfwdError('REMOTE_NODE_MISSING', `${host.name} has node ${version.slice(0, 40)} (${node}), older than ${MIN_NODE_MAJOR}`, hint);
  }
}

/** Where a probed host keeps the agent with this hash. */
export function remoteAgentPath(probe: HostProbe, agentSha256: string): string {
  return `${probe.cacheDir}/agent-${agentSha256}.mjs`;
}
