import type { ChildProcess } from 'node:child_process';
import type { AgentSession, SessionEnd } from './agent-session.ts';
import { KEEPALIVE_OPTIONS } from './agent-session.ts';
import { WATCHING_LINE, WATCH_SCRIPT, remoteCommand } from './remote-scripts.ts';
import { sshArgv, spawnSsh } from './ssh-command.ts';

/**
 * An ssh session re-opened to a host after the agent's own session dropped,
 * while the agent kept running there. It binds the agent's tunnel again at
 * the same remote port (the join string the agent holds names that port, so
 * the agent just dials it again) and watches the agent: it ends when the
 * agent has, and passes a stop on to it.
 */
export class WatchSession {
  readonly exited: Promise<SessionEnd>;
  /** Resolves true once the watch runs on the host (so ssh is logged in), false if the session ended first. */
  readonly watching: Promise<boolean>;
  readonly #child: ChildProcess;
  #ended = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stdin!.on('error', () => {});
    child.stderr!.resume();
    this.exited = new Promise((resolve) => {
      const end = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.#ended = true;
        resolve({ code, signal });
      };
      child.once('close', end);
      child.once('error', () => { if (child.pid === undefined) end(null, null); });
    });
    this.watching = new Promise((resolve) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out = (out + chunk).slice(-256);
        if (out.includes(WATCHING_LINE)) resolve(true);
      });
      void this.exited.then(() => resolve(false));
    });
  }

  /** Dials the agent's host again, for the tunnel of the agent `first` started. */
  static open(first: AgentSession): WatchSession {
    const { spec, port, pid } = first;
    // -R with the port of the first session: sshd gives it again once the dropped session's sshd let it go; until then ssh fails and is re-dialled.
    const tunnel = spec.tunnelTo === undefined || port === undefined ? [] : ['-o', 'ExitOnForwardFailure=yes', '-R', `${port}:${spec.tunnelTo}`];
    const extra = ['-T', '-o', 'ControlMaster=no', '-o', 'ControlPath=none', ...KEEPALIVE_OPTIONS, ...tunnel];
    const command = remoteCommand(WATCH_SCRIPT, [String(pid), spec.agentFileName]);
    return new WatchSession(spawnSsh(sshArgv(spec.settings, spec.host, extra, command)));
  }

  get running(): boolean {
    return !this.#ended;
  }

  /** Asks the agent to stop; the session ends once it has. */
  stop(): void {
    if (this.#child.stdin!.writable) this.#child.stdin!.end('stop\n');
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }
}
