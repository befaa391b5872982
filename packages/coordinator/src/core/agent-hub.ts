import { EventEmitter } from 'node:events';
import type { Server } from 'node:https';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, errorMessage, HANDSHAKE_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS, type Exit, type Logger, type Output } from '@credfwd/shared';
import { AdmissionControl, type AdmissionLimits } from './admission-control.ts';
import { createAgentServer } from './agent-server.ts';
import { AgentSession, type AgentSessionContext, type SessionCluster } from './agent-session.ts';
import { CLOSE_FRAME_GRACE_MS, closeFramesDelivered } from './closing-sockets.ts';
import { readySessions, runnableSessions, statusOf, type AgentStatus, type ClusterEntry } from './cluster-entry.ts';
import { pushCredentials, pushInBatches, type CurrentCredentials } from './credential-push.ts';
import { Heartbeat } from './heartbeat.ts';
import { TaskDispatch, type RunOptions } from './task-dispatch.ts';
import type { TlsIdentity } from './tls-identity.ts';
import { byWorker, type WorkerResult } from './worker-result.ts';

export interface AgentHubOptions {
  tls: TlsIdentity;
  logger: Logger;
  heartbeatIntervalMs?: number;
  /** Time for each step of joining: the TLS handshake, the upgrade request, then the credfwd handshake (4408). */
  handshakeTimeoutMs?: number;
  limits?: Partial<AdmissionLimits>;
  /** Clock for remaining-lifetime arithmetic; injectable for tests. */
  now?: () => number;
  /** Answers plain HTTPS requests on the agent port (a replica's admin API, metrics, health); without it they are left to time out. */
  onRequest?: (request: IncomingMessage, response: ServerResponse) => void;
  /**
   * Finds a cluster this hub does not hold, with its current credentials:
   * replicas learn of clusters made elsewhere through Redis, and an agent may
   * arrive before the news does.
   */
  loadCluster?: (clusterId: string) => Promise<{ cluster: SessionCluster; current: CurrentCredentials | undefined } | undefined>;
  /** Gets task frames no task of this hub claims: tasks a replica relays for another, or that outlived the connection they started on. */
  onUnclaimedTaskMessage?: (clusterId: string, agentId: string, message: Output | Exit) => void;
}

type HubEvents = {
  /** An agent holds the cluster's current credentials, `seq` (or, in null mode, has joined: seq 0). */
  'agent-ready': [clusterId: string, agentId: string, seq: number];
  'agent-gone': [clusterId: string, agentId: string];
  /** A connection was closed with a protocol close code (4400, 4401, 4408, 4409…). */
  refused: [closeCode: number];
};

/**
 * The TLS websocket server agents connect to: authenticates them per
 * cluster, pushes sealed credentials, dispatches tasks and watches liveness.
 */
export class AgentHub extends EventEmitter<HubEvents> {
  readonly #logger: Logger;
  readonly #handshakeTimeoutMs: number;
  readonly #now: () => number;
  readonly #clusters = new Map<string, ClusterEntry>();
  readonly #sessions = new Set<AgentSession>();
  readonly #tasks = new TaskDispatch();
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #heartbeat: Heartbeat;
  readonly #admission: AdmissionControl;
  readonly #loadCluster: AgentHubOptions['loadCluster'];
  readonly #onUnclaimedTaskMessage: AgentHubOptions['onUnclaimedTaskMessage'];
  readonly #context: AgentSessionContext;
  #authenticated = 0;

  constructor(options: AgentHubOptions) {
    super();
    this.#logger = options.logger;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
    this.#admission = new AdmissionControl(this.#logger, options.limits);
    this.#loadCluster = options.loadCluster;
    this.#onUnclaimedTaskMessage = options.onUnclaimedTaskMessage;
    this.#context = this.#sessionContext();
    ({ server: this.#server, wss: this.#wss } = createAgentServer({
      tls: options.tls,
      logger: this.#logger,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      admission: this.#admission,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      onConnection: (socket, address, port) => this.#accept(socket, address, port),
    }));
    this.#updateConnectionCap();
    this.#heartbeat = new Heartbeat({ sockets: () => [...this.#sessions].map((s) => s.socket) }, options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS);
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#heartbeat.start();
    return this.#server.address() as AddressInfo;
  }

  /** Lets agents of this cluster join. */
  addCluster(cluster: SessionCluster): void {
    this.#clusters.set(cluster.id, { ...cluster, current: undefined, sessions: new Map() });
  }

  /** Revokes a cluster: its token stops working and its agents are closed with 4403. */
  removeCluster(clusterId: string): void {
    const entry = this.#clusters.get(clusterId);
    if (!entry) return;
    this.#clusters.delete(clusterId);
    for (const session of entry.sessions.values()) session.close(CloseCode.clusterRevoked, 'cluster closed');
  }

  /** True while the hub lets agents of this cluster join. */
  hasCluster(clusterId: string): boolean {
    return this.#clusters.has(clusterId);
  }

  /** Makes these the cluster's credentials and pushes them to every agent; older ones than those held are ignored. */
  async setCredentials(clusterId: string, current: CurrentCredentials): Promise<void> {
    const entry = this.#clusters.get(clusterId);
    if (!entry || (entry.current && entry.current.seq >= current.seq)) return;
    entry.current = current;
    await pushInBatches([...entry.sessions.values()], (s) => this.#push(entry, s));
  }

  /** Authenticated agents of a cluster. */
  agents(clusterId: string): AgentStatus[] {
    const entry = this.#clusters.get(clusterId);
    if (!entry) return [];
    return [...entry.sessions.values()].map(statusOf);
  }

  /** One authenticated agent of a cluster, without listing the others: called once per ack, so it must not cost O(agents). */
  agent(clusterId: string, agentId: string): AgentStatus | undefined {
    const session = this.#clusters.get(clusterId)?.sessions.get(agentId);
    return session && statusOf(session);
  }

  /** Agents holding the cluster's current credentials (every joined agent in null mode). */
  readyAgents(clusterId: string): string[] {
    return readySessions(this.#clusters.get(clusterId)).map((s) => s.agentId ?? '');
  }

  /** Runs argv on every agent of a cluster that holds its credentials, resolving with each one's result. */
  async run(clusterId: string, argv: string[], options: RunOptions = {}): Promise<WorkerResult[]> {
    const sessions = runnableSessions(this.#clusters.get(clusterId));
    return byWorker(await Promise.all(sessions.map((s) => this.#tasks.start(s, argv, options))));
  }

  /**
   * Sends argv to every agent of a cluster that holds its credentials, without tracking it here:
   * `report` is told of the tasks before any agent gets one, and their output
   * and exit go to `onUnclaimedTaskMessage`, so a replica can relay them to
   * whichever replica collects the results.
   */
  async dispatch(
    clusterId: string,
    argv: string[],
    options: Omit<RunOptions, 'onOutput'>,
    report: (tasks: Array<{ agentId: string; taskId: string }>) => Promise<void>,
  ): Promise<void> {
    const sessions = runnableSessions(this.#clusters.get(clusterId));
    const tasks = sessions.map((s) => ({ session: s, agentId: s.agentId ?? '', taskId: randomUUID() }));
    // Reported before any agent starts: a replica killed after its agents started their tasks must
    // not take with it the only record of which tasks the collector has to wait for.
    await report(tasks.map(({ agentId, taskId }) => ({ agentId, taskId })));
    await Promise.all(tasks.map(async ({ session, agentId, taskId }) => {
      try {
        await session.run(taskId, argv, options);
      } catch (err) {
        // The collector ends it once the agent is gone from every replica.
        this.#logger.warn({ clusterId, agentId, reason: errorMessage(err) }, 'could not send a task to its agent');
      }
    }));
  }

  /**
   * Closes every connection and the listener. Idempotent. By default every
   * cluster is revoked (4403: agents wipe credentials and exit); a replica
   * leaving a service passes `revoke: false`, and its agents are told 1012
   * and reconnect to another replica. Waits up to CLOSE_FRAME_GRACE_MS for
   * the agents to answer before it cuts their connections.
   */
  async close(options: { revoke?: boolean } = {}): Promise<void> {
    this.#heartbeat.close();
    if (options.revoke === false) {
      for (const session of this.#sessions) session.close(CloseCode.serviceRestart, 'replica shutting down');
    } else {
      for (const clusterId of [...this.#clusters.keys()]) this.removeCluster(clusterId);
    }
    await closeFramesDelivered([...this.#sessions].map((session) => session.socket), CLOSE_FRAME_GRACE_MS);
    for (const session of this.#sessions) session.socket.terminate();
    this.#wss.close();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #push(entry: ClusterEntry, session: AgentSession): Promise<void> {
    return entry.current ? pushCredentials(session, entry.id, entry.current, this.#now(), this.#logger) : Promise.resolve();
  }

  /** Holds the unauthenticated connections, and only those, to the cap: net.Server drops a connection over it on accept, before TLS costs anything. */
  #updateConnectionCap(): void {
    this.#server.maxConnections = this.#authenticated + this.#admission.limits.maxPendingHandshakes;
  }

  /** One context for every session: closures made per connection would be held per agent. */
  #sessionContext(): AgentSessionContext {
    return {
      logger: this.#logger,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      findCluster: (clusterId) => this.#clusters.get(clusterId) ?? this.#loadMissing(clusterId),
      onRefused: (code) => this.emit('refused', code),
      onHandshakeFailed: (s) => this.#admission.handshakeFailed(s.address),
      agentIdRefusal: (s) => this.#agentIdRefusal(s),
      onAuthenticated: (s) => this.#onAuthenticated(s),
      onAck: (s, seq) => this.#onAck(s, seq),
      onTaskMessage: (s, message) => {
        if (this.#tasks.accept(s, message)) return;
        if (this.#onUnclaimedTaskMessage && s.clusterId && s.agentId) this.#onUnclaimedTaskMessage(s.clusterId, s.agentId, message);
        else this.#logger.warn({ agentId: s.agentId, clusterId: s.clusterId }, 'agent reported on a task it does not run');
      },
      onClosed: (s) => this.#onClosed(s),
      onGone: (s) => this.#sessions.delete(s),
    };
  }

  #accept(socket: WebSocket, address: string, port: number | undefined): void {
    const session = new AgentSession(socket, address, port, this.#context);
    this.#logger.debug({ remote: session.remote }, 'handshake admitted');
    this.#sessions.add(session);
    this.#heartbeat.track(socket);
  }

  async #loadMissing(clusterId: string): Promise<SessionCluster | undefined> {
    if (!this.#loadCluster) return undefined;
    const found = await this.#loadCluster(clusterId);
    if (!found) return undefined;
    if (!this.#clusters.has(clusterId)) this.addCluster(found.cluster);
    if (found.current) await this.setCredentials(clusterId, found.current);
    return this.#clusters.get(clusterId);
  }

  /**
   * A connection under a live agent's id with that agent's key pair is the
   * agent itself reconnecting (its old socket may be half-open) and replaces
   * the old one; with another key pair it is another agent, refused, so two
   * agents given one id do not knock each other off forever.
   */
  #agentIdRefusal(session: AgentSession): string | undefined {
    const live = this.#clusters.get(session.clusterId ?? '')?.sessions.get(session.agentId ?? '');
    if (!live || live.agentPublicKey === session.agentPublicKey) return undefined;
    return `agent id already used by another agent, connected from ${live.remote}`;
  }

  #onAuthenticated(session: AgentSession): void {
    this.#authenticated += 1;
    this.#updateConnectionCap();
    const entry = this.#clusters.get(session.clusterId ?? '');
    const agentId = session.agentId;
    if (!entry || !agentId) return;
    // The same agent reconnecting (#agentIdRefusal let it in) replaces its earlier, possibly half-open, connection.
    entry.sessions.get(agentId)?.close(CloseCode.normal, 'replaced by a newer connection');
    entry.sessions.set(agentId, session);
    if (entry.delivery === 'none') {
      this.emit('agent-ready', entry.id, agentId, 0);
      return;
    }
    this.#push(entry, session).catch((err: unknown) => {
      this.#logger.error({ clusterId: entry.id, agentId, reason: errorMessage(err) }, 'credentials push failed');
    });
  }

  #onAck(session: AgentSession, seq: number): void {
    const entry = this.#clusters.get(session.clusterId ?? '');
    if (!entry || !session.agentId) return;
    this.#logger.debug({ clusterId: entry.id, agentId: session.agentId, seq }, 'credentials acknowledged');
    if (entry.current && seq === entry.current.seq) this.emit('agent-ready', entry.id, session.agentId, seq);
  }

  #onClosed(session: AgentSession): void {
    this.#authenticated -= 1;
    this.#updateConnectionCap();
    this.#tasks.abandon(session);
    const clusterId = session.clusterId;
    const agentId = session.agentId;
    if (!clusterId || !agentId) return;
    const entry = this.#clusters.get(clusterId);
    if (entry?.sessions.get(agentId) === session) entry.sessions.delete(agentId);
    this.#logger.info({ clusterId, agentId }, 'agent left');
    this.emit('agent-gone', clusterId, agentId);
  }
}
