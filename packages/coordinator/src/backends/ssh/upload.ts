import { CredfwdError } from '@credfwd/shared';
import { remoteAgentPath, type HostProbe } from './preflight.ts';
import { UPLOAD_SCRIPT, remoteCommand } from './remote-scripts.ts';
import { runSsh, sshArgv, type SshSettings } from './ssh-command.ts';
import { SSH_FAILURE_STATUS, lastLines, sshFailure } from './ssh-errors.ts';

/** Time for the agent file (a few MB) to cross a slow link, beyond the connection itself. */
const UPLOAD_TIMEOUT_MS = 120_000;

/**
 * Puts the agent on a host over ssh's stdin, unless the probe found it there
 * with the same hash. Returns whether it had to.
 */
export async function ensureAgent(settings: SshSettings, probe: HostProbe, agent: Buffer, agentSha256: string, signal?: AbortSignal): Promise<'uploaded' | 'cached'> {
  if (probe.cached) return 'cached';
  const { host } = probe;
  const argv = sshArgv(settings, host, ['-T'], remoteCommand(UPLOAD_SCRIPT, [probe.cacheDir, agentSha256, probe.node]));
  const outcome = await runSsh(argv, agent, settings.connectTimeoutSeconds * 1000 + UPLOAD_TIMEOUT_MS, host, signal);
  if (outcome.code === SSH_FAILURE_STATUS) throw sshFailure(host, outcome.stderr);
  if (outcome.code !== 0) {
    throw new CredfwdError(
      'REMOTE_UPLOAD_FAILED',
      `cannot write the agent to ${remoteAgentPath(probe, agentSha256)} on ${host.name}${lastLines(outcome.stderr) ? `: ${lastLines(outcome.stderr)}` : ''}`,
      `check the space and permissions of ${probe.cacheDir} on ${host.name} (XDG_CACHE_HOME moves it)`,
    );
  }
  return 'uploaded';
}
