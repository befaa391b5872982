import type { CredfwdError, Logger } from '@credfwd/shared';
import type { LaunchedAgents, WorkerPlacement } from '../launch-backend.ts';
import { AgentLink } from './agent-link.ts';
import type { AgentSession } from './agent-session.ts';

/**
 * How long agents have to leave after their cluster was revoked or they
 * were asked to stop: above the agent's 5 s between SIGTERM and SIGKILL of
 * a workload that ignores SIGTERM.
 */
const STOP_GRACE_MS = 8_000;

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

/** Agents running over SSH sessions, one link per agent: its session, re-opened when it drops. */
export class SshAgents implements LaunchedAgents {
  readonly workers: readonly WorkerPlacement[];
  readonly hosts: readonly HostReport[];
  readonly failedHosts: readonly FailedHost[];
  readonly #links: readonly AgentLink[];
  #stopping = false;
  #listener: ((error: CredfwdError) => void) | undefined;

  constructor(sessions: readonly AgentSession[], hosts: readonly HostReport[], failedHosts: readonly FailedHost[], logger: Logger, giveUpAfterMs: number) {
    this.#links = sessions.map((session) => new AgentLink(session, {
      giveUpAfterMs,
      logger,
      onLost: (error) => {
        if (!this.#stopping) this.#listener?.(error);
      },
    }));
    this.workers = sessions.map((s) => ({ agentId: s.agentId, host: s.host.name }));
    this.hosts = hosts;
    this.failedHosts = failedHosts;
  }

  onUnexpectedExit(listener: (error: CredfwdError) => void): void {
    this.#listener = listener;
  }

  /**
   * Asks every agent to stop through its session (after a revocation they
   * are leaving already) and waits until each has: its session ends with
   * it. ssh processes still running after the grace are signalled, then
   * killed. An agent whose host is unreachable stops itself after
   * --give-up-after.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await stopAll(this.#links);
  }

  /**
   * Signals every agent at once (the launcher itself is interrupted): a
   * `stop` on each session's stdin, and the agents stop their workloads and
   * exit. ssh is left to end with its agent, so stop() still waits for them;
   * killing ssh here would let an interrupted launcher exit while its agents
   * still ran on the hosts (remote processes get no signal from it anyway).
   */
  terminate(): void {
    this.#stopping = true;
    for (const link of this.#links) link.stop();
  }
}

/**
 * Asks every agent of these sessions to stop and waits until each has: a
 * session ends once its agent exits. ssh processes still running after the
 * grace are signalled, then killed. Waiting is the point: once this
 * resolves, nothing of these sessions runs on any host.
 */
export async function stopSessions(sessions: readonly AgentSession[]): Promise<void> {
  for (const s of sessions) s.stop();
  await boundedWait(sessions.map((s) => s.exited), (signal) => { for (const s of sessions) s.kill(signal); });
}

async function stopAll(links: readonly AgentLink[]): Promise<void> {
  for (const link of links) link.stop();
  await boundedWait(links.map((l) => l.gone), (signal) => { for (const l of links) l.kill(signal); });
}

async function boundedWait(ends: readonly Promise<unknown>[], signal: (name: NodeJS.Signals) => void): Promise<void> {
  const term = setTimeout(() => signal('SIGTERM'), STOP_GRACE_MS);
  const kill = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS * 2);
  await Promise.all(ends);
  clearTimeout(term);
  clearTimeout(kill);
}
