import type { AgentSession, SessionCluster } from './agent-session.ts';
import type { CurrentCredentials } from './credential-push.ts';

/** A connected, authenticated agent as the hub sees it. */
export interface AgentStatus {
  agentId: string;
  remote: string;
  /** Highest credentials seq acknowledged; -1 before any. */
  ackedSeq: number;
}

/** A cluster the hub lets agents join: its credentials now and its authenticated agents by id. */
export interface ClusterEntry extends SessionCluster {
  current: CurrentCredentials | undefined;
  sessions: Map<string, AgentSession>;
}

export function statusOf(session: AgentSession): AgentStatus {
  return { agentId: session.agentId ?? '', remote: session.remote, ackedSeq: session.ackedSeq };
}

/** Whether an agent holds the cluster's current credentials (every joined agent in null mode). */
export function isReady(entry: ClusterEntry, session: AgentSession): boolean {
  return session.ready && (entry.delivery === 'none' || (entry.current !== undefined && session.ackedSeq >= entry.current.seq));
}

/** The cluster's agents that hold its current credentials; none for a cluster the hub does not hold. */
export function readySessions(entry: ClusterEntry | undefined): AgentSession[] {
  return entry ? [...entry.sessions.values()].filter((s) => isReady(entry, s)) : [];
}

/**
 * The cluster's agents a run goes to: every joined agent holding credentials
 * of the cluster, the current ones or those a push in flight is replacing. A
 * run that skipped an agent for acking a refresh a moment late would look like
 * success with a worker missing.
 */
export function runnableSessions(entry: ClusterEntry | undefined): AgentSession[] {
  return entry ? [...entry.sessions.values()].filter((s) => s.ready && (entry.delivery === 'none' || s.ackedSeq >= 0)) : [];
}
