import type { CredfwdError, Logger } from '@credfwd/shared';

/**
 * The seam between a cluster and the machines its workers run on. A backend
 * starts agents and hands each the join string; it never sees credentials,
 * and the cluster never knows how agents start (local processes, SSH hosts).
 */
export interface LaunchBackend {
  /**
   * Starts every agent, or none: a backend that checks hosts first rejects
   * with a coded error before any agent starts anywhere. Resolves once the
   * agents are started (not yet joined: the cluster waits for that).
   */
  start(request: AgentLaunchRequest): Promise<LaunchedAgents>;
}

export interface AgentLaunchRequest {
  clusterId: string;
  /** A secret: reaches agents on a pipe or stdin, never in argv, environment or a lasting file. */
  joinString: string;
  /** `host:port` at which this machine reaches the coordinator: what a tunnel forwards to. */
  coordinatorAddress: string;
  /** Agents dial the join string's own addresses (--direct, --public-address, a service) instead of a tunnel. */
  direct: boolean;
  logger: Logger;
  signal?: AbortSignal;
  /** Added to each agent's clean environment: stands in for a worker's own platform variables. */
  workerEnv?: Record<string, string>;
  /** Echo agents' log lines to this process's stderr. */
  echoLogs?: boolean;
}

/** Where one agent runs. */
export interface WorkerPlacement {
  agentId: string;
  /** The host as the user named it (`localhost` for local workers). */
  host: string;
}

/** The agents a backend started. */
export interface LaunchedAgents {
  readonly workers: readonly WorkerPlacement[];
  /** Called with a clear error when an agent (or its host) is lost while the cluster runs. */
  onUnexpectedExit(listener: (error: CredfwdError) => void): void;
  /** Waits for agents to leave after their cluster was revoked; stops stragglers. */
  stop(): Promise<void>;
  /** Signals every agent at once (the launcher itself is interrupted). */
  terminate(): void;
}
