import { createSecretKey, type KeyObject } from 'node:crypto';
import type { WebSocket } from 'ws';
import { SocketListeners } from './socket-listeners.ts';
import { CloseCode, createExchangeKeyPair, createNonce, CredfwdError, decodeAgentMessage, deriveSessionKey, encodeMessage, errorMessage, PROTOCOL_VERSION, sealJson, verifyProof, type AgentMessage, type AwsCredentials, type CoordinatorMessage, type DeliveryMode, type ExchangeKeyPair, type Exit, type HandshakeTranscript, type Logger, type OnRefresh, type Output } from '@credfwd/shared';

/** What a session needs to know of the cluster an agent claims to belong to. */
export interface SessionCluster {
  id: string;
  /** {@link tokenVerifier} of the join token: the token itself is not kept. */
  verifier: string;
  delivery: DeliveryMode;
  environ: Record<string, string>;
  region: string | null;
}

/** What a session needs of the hub that owns it. */
export interface AgentSessionContext {
  logger: Logger;
  handshakeTimeoutMs: number;
  /** The cluster an agent names, if it exists; may look it up elsewhere (Redis) when not held in memory. */
  findCluster(clusterId: string): SessionCluster | undefined | Promise<SessionCluster | undefined>;
  /** The handshake was refused or broke a frame rule; called at most once per session. */
  onHandshakeFailed(session: AgentSession): void;
  /** The session was closed with a protocol close code (every refusal, for metrics). */
  onRefused(closeCode: number): void;
  /**
   * Why this authenticated session may not take its agent id (another agent
   * holds it), or undefined if it may. Asked in the same turn as
   * onAuthenticated, so two agents racing for one id cannot both pass.
   */
  agentIdRefusal(session: AgentSession): string | undefined;
  onAuthenticated(session: AgentSession): void;
  onAck(session: AgentSession, seq: number): void;
  onTaskMessage(session: AgentSession, message: Output | Exit): void;
  /** An authenticated session's connection closed. */
  onClosed(session: AgentSession): void;
  /** The connection closed, authenticated or not; called once per session. */
  onGone(session: AgentSession): void;
}

type State = 'awaiting-hello' | 'awaiting-lookup' | 'awaiting-proof' | 'ready' | 'closed';

/**
 * One agent connection: the handshake state machine, then sealed pushes and
 * task frames. Anything unexpected closes the socket with a protocol code;
 * nothing an agent sends can throw out of here.
 *
 * A coordinator holds thousands of these for as long as their agents stay
 * connected, so one holds nothing per agent it does not need once joined:
 * the handshake's key pair, nonce and deadline are dropped at the welcome,
 * only the imported session key is kept, and the context and the socket
 * listeners are shared by every session rather than made per connection.
 */
export class AgentSession {
  static readonly #listeners = new SocketListeners<AgentSession>({
    message: (session, data) => session.#receive(data),
    error: (session, err) => {
      session.#context.logger.warn({ remote: session.remote, agentId: session.#agentId, reason: err.message }, 'agent socket error');
      session.#reportHandshakeFailure();
    },
    close: (session) => session.#closed(),
  });

  /** The peer's IP address, as admission control counts it. */
  readonly address: string;
  readonly #port: number | undefined;
  #state: State = 'awaiting-hello';
  #socket: WebSocket;
  #context: AgentSessionContext;
  #keyPair: ExchangeKeyPair | undefined = createExchangeKeyPair();
  #nonce: string | undefined = createNonce();
  #key: KeyObject | undefined;
  #cluster: SessionCluster | undefined;
  #agentId: string | undefined;
  #agentPublicKey: string | undefined;
  #ackedSeq = -1;
  #readingHolds = 0;
  #closing = false;
  #deadline: NodeJS.Timeout | undefined;
  #failureReported = false;

  constructor(socket: WebSocket, address: string, port: number | undefined, context: AgentSessionContext) {
    this.#socket = socket;
    this.address = address;
    this.#port = port;
    this.#context = context;
    this.#deadline = setTimeout(() => this.#refuse(CloseCode.handshakeTimeout, 'handshake timeout', 'handshake not finished in time'), context.handshakeTimeoutMs);
    AgentSession.#listeners.attach(socket, this);
  }

  /** `address:port`, for logs and status; built when asked rather than held per agent. */
  get remote(): string {
    return `${this.address}:${this.#port}`;
  }

  get clusterId(): string | undefined {
    return this.#cluster?.id;
  }

  get agentId(): string | undefined {
    return this.#agentId;
  }

  /** The agent's X25519 public key from its hello: one per agent process, the same on each of its connections. */
  get agentPublicKey(): string | undefined {
    return this.#agentPublicKey;
  }

  get socket(): WebSocket {
    return this.#socket;
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** Highest credentials sequence number the agent acknowledged, -1 before any. */
  get ackedSeq(): number {
    return this.#ackedSeq;
  }

  /** Seals credentials to this agent's key and sends them. */
  async pushCredentials(seq: number, remainingSeconds: number, refreshInSeconds: number | undefined, credentials: AwsCredentials): Promise<void> {
    if (!this.#key || this.#state !== 'ready') return;
    const jwe = await sealJson(this.#key, credentials);
    this.#send({ type: 'credentials', seq, remainingSeconds, ...(refreshInSeconds ? { refreshInSeconds } : {}), jwe });
  }

  /** Asks the agent to run a task; its output comes back through the context. */
  async run(taskId: string, argv: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; onRefresh?: OnRefresh }): Promise<void> {
    if (!this.#key || this.#state !== 'ready') throw new CredfwdError('CLUSTER_NOT_FOUND', 'agent is not connected', 'wait for the agent to reconnect');
    const env = options.env ? await sealJson(this.#key, options.env) : undefined;
    this.#send({
      type: 'run',
      taskId,
      argv,
      ...(env ? { env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.onRefresh && options.onRefresh !== 'none' ? { onRefresh: options.onRefresh } : {}),
    });
  }

  /**
   * Stops reading this agent's frames until `until` settles (whatever else
   * holds reading too): they wait in the network, the agent's backlog fills,
   * and it slows its workloads down. The socket still sends (pings, pushes);
   * the heartbeat does not judge a socket paused here, as it cannot read pongs.
   */
  holdReading(until: Promise<unknown>): void {
    if (this.#closing) return;
    if (this.#readingHolds++ === 0) this.#socket.pause();
    const release = (): void => {
      if (--this.#readingHolds === 0 && !this.#closing) this.#socket.resume();
    };
    until.then(release, release);
  }

  /** Closes the connection with a protocol close code. */
  close(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#socket.close(code, reason);
    // The agent's answering close frame waits behind the output held back: without reading on, neither end would finish closing.
    this.#closing = true;
    this.#socket.resume();
  }

  #send(message: CoordinatorMessage): void {
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.send(encodeMessage(message));
  }

  #refuse(code: number, reason: string, detail: string): void {
    this.#context.logger.warn({ remote: this.remote, clusterId: this.#cluster?.id, agentId: this.#agentId, closeCode: code, detail }, 'agent refused');
    this.#reportHandshakeFailure();
    if (this.#state !== 'closed') this.#context.onRefused(code);
    this.close(code, reason);
  }

  #reportHandshakeFailure(): void {
    if (this.#failureReported || this.#state === 'ready' || this.#state === 'closed') return;
    this.#failureReported = true;
    this.#context.onHandshakeFailed(this);
  }

  #receive(data: unknown): void {
    let message: AgentMessage;
    try {
      message = decodeAgentMessage(data);
    } catch (err) {
      this.#refuse(CloseCode.badFrame, 'bad frame', err instanceof Error ? err.message : 'undecodable frame');
      return;
    }
    this.#handle(message).catch((err: unknown) => {
      this.#refuse(CloseCode.badFrame, 'bad frame', err instanceof Error ? err.message : 'frame handling failed');
    });
  }

  async #handle(message: AgentMessage): Promise<void> {
    switch (this.#state) {
      case 'awaiting-hello':
        if (message.type !== 'hello') return this.#refuse(CloseCode.badFrame, 'bad frame', `expected hello, got ${message.type}`);
        return await this.#onHello(message.v, message.clusterId, message.agentId, message.publicKey);
      case 'awaiting-lookup':
        return this.#refuse(CloseCode.badFrame, 'bad frame', `unexpected ${message.type} before challenge`);
      case 'awaiting-proof':
        if (message.type !== 'proof') return this.#refuse(CloseCode.badFrame, 'bad frame', `expected proof, got ${message.type}`);
        return this.#onProof(message.mac);
      case 'ready':
        if (message.type === 'ack') {
          this.#ackedSeq = Math.max(this.#ackedSeq, message.seq);
          this.#context.onAck(this, message.seq);
        } else if (message.type === 'output' || message.type === 'exit') {
          this.#context.onTaskMessage(this, message);
        } else {
          this.#refuse(CloseCode.badFrame, 'bad frame', `unexpected ${message.type} after handshake`);
        }
        return;
      case 'closed':
        return;
    }
  }

  async #onHello(v: number, clusterId: string, agentId: string, publicKey: string): Promise<void> {
    if (v !== PROTOCOL_VERSION) return this.#refuse(CloseCode.versionMismatch, 'protocol version mismatch', `agent speaks v${v}`);
    this.#agentId = agentId;
    // A frame arriving during the lookup must not be taken for the proof.
    this.#state = 'awaiting-lookup';
    const cluster = await this.#lookUp(clusterId);
    if (cluster === null || this.#state !== 'awaiting-lookup') return;
    if (!cluster) return this.#refuse(CloseCode.authFailed, 'authentication failed', 'unknown cluster');
    this.#cluster = cluster;
    this.#agentPublicKey = publicKey;
    if (!this.#nonce || !this.#keyPair) return;
    this.#state = 'awaiting-proof';
    this.#send({ type: 'challenge', nonce: this.#nonce, publicKey: this.#keyPair.publicKey });
  }

  /**
   * The cluster, undefined when there is none, or null when the registry
   * could not be asked: then the registry is unreachable, not the agent
   * wrong, and 1013 keeps it retrying instead of giving up as on 4401 (nor is
   * its address counted as failing handshakes).
   */
  async #lookUp(clusterId: string): Promise<SessionCluster | undefined | null> {
    try {
      return await this.#context.findCluster(clusterId);
    } catch (err) {
      this.#context.logger.warn({ remote: this.remote, clusterId, reason: errorMessage(err) }, 'cluster lookup failed; asking the agent to retry');
      this.close(CloseCode.tryAgainLater, 'try again later');
      return null;
    }
  }

  async #onProof(mac: string): Promise<void> {
    const cluster = this.#cluster;
    const keyPair = this.#keyPair;
    if (!cluster || !this.#agentId || !this.#agentPublicKey || !this.#nonce || !keyPair) return;
    const transcript: HandshakeTranscript = {
      nonce: this.#nonce,
      clusterId: cluster.id,
      agentId: this.#agentId,
      agentPublicKey: this.#agentPublicKey,
      coordinatorPublicKey: keyPair.publicKey,
    };
    // The cluster may have been closed while the agent computed its proof.
    const live = await this.#lookUp(cluster.id);
    if (live === null || this.#state !== 'awaiting-proof') return;
    if (!live || !verifyProof(live.verifier, transcript, mac)) return this.#refuse(CloseCode.authFailed, 'authentication failed', 'wrong join token');
    this.#key = createSecretKey(deriveSessionKey(keyPair, this.#agentPublicKey, transcript));
    this.#dropHandshakeState();
    const environ = await sealJson(this.#key, live.environ);
    const idRefusal = this.#context.agentIdRefusal(this);
    if (idRefusal !== undefined) return this.#refuse(CloseCode.agentIdInUse, 'agent id in use', idRefusal);
    this.#state = 'ready';
    this.#send({ type: 'welcome', delivery: live.delivery, region: live.region, environ });
    this.#context.logger.info({ remote: this.remote, clusterId: cluster.id, agentId: this.#agentId }, 'agent joined');
    this.#context.onAuthenticated(this);
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    const wasReady = this.#state === 'ready';
    this.#state = 'closed';
    this.#dropHandshakeState();
    if (wasReady) this.#context.onClosed(this);
    this.#context.onGone(this);
  }

  /** What only the handshake needs: a private key (native memory too) and a Timeout a joined agent would otherwise hold for as long as it stays. */
  #dropHandshakeState(): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    this.#keyPair = undefined;
    this.#nonce = undefined;
  }
}
