import type { ChildProcess } from 'node:child_process';
import { CredfwdError, formatJoinString, parseJoinString } from '@credfwd/shared';
import { AGENT_PID_PREFIX, AGENT_SCRIPT, remoteCommand } from './remote-scripts.ts';
import { launchAborted } from '../../core/index.ts';
import { sshArgv, sshMissing, spawnSsh, type SshSettings } from './ssh-command.ts';
import { SSH_FAILURE_STATUS, lastLines, sshFailure } from './ssh-errors.ts';
import type { SshHost } from './ssh-host.ts';

/** Kept of each session's stderr (ssh's and the agent's), to explain an end. */
const STDERR_TAIL_CHARS = 8192;
/** How long an aborted session's agent has to stop after its stdin ended, before ssh is killed. */
const ABORT_GRACE_MS = 5_000;
// ssh prints this at LogLevel INFO when sshd chose the port of `-R 0:…`.
const ALLOCATED_PORT = /Allocated port (\d+) for remote forward/;
const AGENT_PID = new RegExp(`^${AGENT_PID_PREFIX}(\\d+)$`, 'm');
/**
 * Every session's keepalive: a link that stops answering is noticed within
 * 15 s and re-dialled (a user's own ServerAlive* options come first and win).
 */
export const KEEPALIVE_OPTIONS = ['-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3'] as const;

export interface AgentSessionSpec {
  settings: SshSettings;
  host: SshHost;
  agentId: string;
  /** node, its options, the agent file and the agent's arguments, as paths on the host. */
  command: string[];
  /** The agent file's name: how a watch session re-opened after a dropped link tells the agent's pid from a reused one. */
  agentFileName: string;
  logLevel: string;
  /** `host:port` of the coordinator as this machine reaches it, to tunnel to; undefined with --direct. */
  tunnelTo: string | undefined;
  /** A secret: written to the session's stdin only. */
  joinString: string;
  workerEnv: Readonly<Record<string, string>>;
  echoLogs: boolean;
  /** The launch's abort: stops the wait for the tunnel's port, which may otherwise last the whole connect timeout. */
  signal?: AbortSignal;
}

/** How a session ended. */
export interface SessionEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One agent on a host: the ssh session that starts it, which carries the
 * join string on stdin and the reverse tunnel the agent dials the
 * coordinator through. The agent runs with --outlive-stdin: the session
 * ending (a dropped link) does not stop it, a `stop` line on stdin does; the
 * session ends when the agent exits, which is how its end is seen here.
 */
export class AgentSession {
  readonly agentId: string;
  readonly host: SshHost;
  readonly exited: Promise<SessionEnd>;
  readonly spec: AgentSessionSpec;
  /** The tunnel's remote port, which a re-opened session binds again; undefined with --direct. */
  port: number | undefined;
  /** The agent's pid on the host, as its script reported it. */
  pid: number | undefined;
  #stderrTail = '';
  readonly #child: ChildProcess;
  #ended: SessionEnd | undefined;
  #established = false;

  private constructor(spec: AgentSessionSpec, child: ChildProcess) {
    this.agentId = spec.agentId;
    this.host = spec.host;
    this.spec = spec;
    this.#child = child;
    child.stdin!.on('error', () => {});
    child.stdout!.resume();
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      this.pid ??= Number(AGENT_PID.exec(this.#stderrTail)?.[1] ?? '') || undefined;
      if (spec.echoLogs) process.stderr.write(chunk);
    });
    this.exited = new Promise((resolve) => {
      const end = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.#ended ??= { code, signal };
        resolve(this.#ended);
      };
      child.once('close', end);
      // ssh that could not be spawned emits 'error' and maybe never 'close'.
      child.once('error', () => { if (child.pid === undefined) end(null, null); });
    });
  }

  /**
   * Opens the session and hands the agent its join string once the tunnel
   * is up (the string must name the tunnel's remote port, which sshd picks).
   * Rejects with the host's error if ssh fails first; the session is then gone.
   */
  static async open(spec: AgentSessionSpec): Promise<AgentSession> {
    // A loopback TCP port, not a Unix socket only the remote user may open: a re-opened session must bind the tunnel again
    // where the agent dials it, and a socket path left by the dropped session can only be re-bound where the host's sshd
    // sets StreamLocalBindUnlink (default no; for -R only sshd's setting counts, not ours), while a port is free again as
    // soon as the dropped session's sshd is gone. Another user of the host reaching the port meets TLS with the pin and
    // the join token's proof, so learns and joins nothing; one who binds the port while a dropped link is being re-dialled
    // can only make the agent stop (AGENT_PIN_MISMATCH), which a socket in the user's own directory would rule out.
    const tunnel = spec.tunnelTo === undefined ? [] : ['-o', 'ExitOnForwardFailure=yes', '-R', `0:${spec.tunnelTo}`];
    // Each agent gets a connection of its own: a shared ControlMaster would report the port elsewhere and tie every agent's life to one link.
    // LogLevel INFO is where ssh reports the tunnel's port; a user option setting it comes earlier and wins.
    const extra = ['-T', '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'LogLevel=INFO', ...KEEPALIVE_OPTIONS, ...tunnel];
    const command = remoteCommand(AGENT_SCRIPT, [spec.agentId, spec.logLevel, ...spec.command]);
    const child = spawnSsh(sshArgv(spec.settings, spec.host, extra, command));
    const session = new AgentSession(spec, child);
    try {
      const port = await session.#started(spec.settings.connectTimeoutSeconds * 1000 + 20_000, spec.tunnelTo !== undefined, spec.signal);
      session.port = port;
      const joinString = port === undefined ? spec.joinString : throughTunnel(spec.joinString, port);
      const env = Object.entries(spec.workerEnv).map(([name, value]) => `${name}=${value}\n`).join('');
      child.stdin!.write(`${env}\n${joinString}\n`);
      session.#established = true;
    } catch (err) {
      // Aborted: stopped as close() stops agents, so none runs on the host once open() rejects. Failed: ssh is killed.
      if (spec.signal?.aborted) session.stop();
      else session.kill('SIGKILL');
      const kill = setTimeout(() => session.kill('SIGKILL'), ABORT_GRACE_MS);
      await session.exited;
      clearTimeout(kill);
      throw err;
    }
    return session;
  }

  get running(): boolean {
    return this.#ended === undefined;
  }

  /** Asks the agent to stop (a `stop` line on its stdin): it stops its workloads and exits, and the session with it. */
  stop(): void {
    if (this.#child.stdin!.writable) this.#child.stdin!.end('stop\n');
  }

  /**
   * Whether the session ended because the link did, not because the agent
   * exited: ssh's own failure once the agent ran, or ssh killed here by
   * someone else (ours are only killed while stopping), after which sshd
   * ends the session and the agent, without a pty, gets no SIGHUP.
   */
  linkDropped(end: SessionEnd): boolean {
    return this.#established && (end.code === SSH_FAILURE_STATUS || end.signal !== null);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  /**
   * Why the session ended, as an error naming the host. ssh's own failure
   * while the session was being opened says what to fix (host key, login,
   * reachability); once the agent was running, it means the link was lost.
   */
  failure(end: SessionEnd): CredfwdError {
    if (end.code === SSH_FAILURE_STATUS && !this.#established) return sshFailure(this.host, this.#stderrTail);
    if (end.code === SSH_FAILURE_STATUS) {
      return new CredfwdError(
        'SSH_CONNECTION_LOST',
        `the SSH connection to ${this.host.name} running agent ${this.agentId} ended${lastLines(this.#stderrTail) ? ` (ssh: ${lastLines(this.#stderrTail)})` : ''}`,
        `check the network path to ${this.host.name} and its sshd; the agent there stops itself after --give-up-after without its coordinator`,
        { retryable: true },
      );
    }
    const said = lastLines(this.#stderrTail.split('\n').filter((line) => !line.startsWith('{') && !line.startsWith(AGENT_PID_PREFIX)).join('\n'));
    return new CredfwdError(
      'AGENT_START_FAILED',
      `agent ${this.agentId} on ${this.host.name} exited (${end.code ?? end.signal ?? 'unknown'})${said ? `: ${said}` : ''}`,
      `run with CREDFWD_LOG_LEVEL=debug to see the agent's logs; ssh ${this.host.name} shows what its sessions get`,
    );
  }

  /** Waits for the agent's pid and, with a tunnel, the port sshd chose for it. */
  #started(timeoutMs: number, tunnel: boolean, signal: AbortSignal | undefined): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      const stderr = this.#child.stderr!;
      const finish = (outcome: number | undefined | CredfwdError): void => {
        clearTimeout(timer);
        stderr.off('data', onData);
        this.#child.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
        if (outcome instanceof CredfwdError) reject(outcome);
        else resolve(outcome);
      };
      const onData = (): void => {
        const port = ALLOCATED_PORT.exec(this.#stderrTail)?.[1];
        if (this.pid !== undefined && (!tunnel || port !== undefined)) finish(port === undefined ? undefined : Number(port));
      };
      const onError = (err: NodeJS.ErrnoException): void => finish(sshMissing(err));
      const onAbort = (): void => finish(launchAborted(signal!));
      const timer = setTimeout(() => finish(this.pid === undefined
        ? new CredfwdError('SSH_FAILED', `the agent on ${this.host.name} did not start within ${Math.round(timeoutMs / 1000)} s`, `check that \`ssh ${this.host.name} true\` runs promptly; a slow login shell rc file delays every session`)
        : new CredfwdError(
          'SSH_FAILED',
          `ssh to ${this.host.name} did not report the reverse tunnel's port within ${Math.round(timeoutMs / 1000)} s`,
          `ssh reports it at LogLevel INFO or higher: remove a LogLevel QUIET/FATAL/ERROR for ${this.host.name}, or pass --direct`,
        )), timeoutMs);
      stderr.on('data', onData);
      this.#child.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      onData();
      void this.exited.then((end) => finish(this.failure(end)));
    });
  }
}

/** The join string with its addresses replaced by the tunnel's remote end: the agent's own loopback. */
function throughTunnel(joinString: string, port: number): string {
  return formatJoinString({ ...parseJoinString(joinString), addresses: [`127.0.0.1:${port}`] });
}
