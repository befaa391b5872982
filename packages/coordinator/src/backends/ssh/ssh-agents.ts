import type { CredfwdError, Logger } from '@credfwd/shared';
import type { LaunchedAgents, WorkerPlacement } from '../launch-backend.ts';
import type { AgentSession } from './agent-session.ts';

/** How long agents have to leave after their cluster was revoked and their stdin ended. */
const STOP_GRACE_MS = 5_000;

/** What happened on one host during the launch. */
export interface HostReport {
  host: string;
  /** The host's node version, e.g. `v20.11.1`. */
  nodeVersion: string;
  /** Whether the agent was uploaded or already in the host's cache with the same hash. */
  agent: 'uploaded' | 'cached';
}

/** A host left out of a launch with `allowPartial`, and why. */
export interface FailedHost {
  host: string;
  error: CredfwdError;
}

/** Agents running over SSH sessions, one session per agent. */
export class SshAgents implements LaunchedAgents {
  readonly workers: readonly WorkerPlacement[];
  readonly hosts: readonly HostReport[];
  readonly failedHosts: readonly FailedHost[];
  readonly #sessions: readonly AgentSession[];
  readonly #logger: Logger;
  #stopping = false;
  #listener: ((error: CredfwdError) => void) | undefined;

  constructor(sessions: readonly AgentSession[], hosts: readonly HostReport[], failedHosts: readonly FailedHost[], logger: Logger) {
    this.#sessions = sessions;
    this.workers = sessions.map((s) => ({ agentId: s.agentId, host: s.host.name }));
    this.hosts = hosts;
    this.failedHosts = failedHosts;
    this.#logger = logger;
    for (const session of sessions) {
      void session.exited.then((end) => {
        if (this.#stopping) return;
        const error = session.failure(end);
        this.#logger.error({ agentId: session.agentId, host: session.host.name, code: error.code }, 'remote agent lost');
        this.#listener?.(error);
      });
    }
  }

  onUnexpectedExit(listener: (error: CredfwdError) => void): void {
    this.#listener = listener;
  }

  /**
   * Ends every session's stdin (the agents' lifeline) and waits for the
   * sessions to end; ssh processes still running after the grace are
   * signalled, then killed. Remote agents whose session is gone stop by
   * themselves: their stdin ends with it.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await stopSessions(this.#sessions);
  }

  /**
   * Signals every agent at once, as agents over SSH are signalled: each
   * session's stdin ends, and its agent stops its workloads and exits. ssh
   * itself is left to end with its agent, so stop() still waits for them;
   * killing ssh here let an interrupted launcher exit while its agents
   * still ran on the hosts (remote processes get no signal from it anyway).
   */
  terminate(): void {
    this.#stopping = true;
    for (const s of this.#sessions) s.endInput();
  }
}

/**
 * Ends every session's stdin (the agents' lifeline) and waits for the
 * sessions to end, which they do once their agents have stopped; ssh
 * processes still running after the grace are signalled, then killed.
 * Waiting is the point: once this resolves, nothing of these sessions runs
 * on any host (killing ssh at once would return while agents still run).
 */
export async function stopSessions(sessions: readonly AgentSession[]): Promise<void> {
  for (const s of sessions) s.endInput();
  const all = Promise.all(sessions.map((s) => s.exited));
  const term = setTimeout(() => { for (const s of sessions) s.kill('SIGTERM'); }, STOP_GRACE_MS);
  const kill = setTimeout(() => { for (const s of sessions) s.kill('SIGKILL'); }, STOP_GRACE_MS * 2);
  await all;
  clearTimeout(term);
  clearTimeout(kill);
}
