import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CloseCode,
  MAX_PAYLOAD_BYTES,
  createExchangeKeyPair,
  createJoinToken,
  createNonce,
  decodeAgentMessage,
  deriveSessionKey,
  encodeMessage,
  sealJson,
  tokenVerifier,
  verifyProof,
  type AgentMessage,
  type AwsCredentials,
  type CoordinatorMessage,
  type DeliveryMode,
  type HandshakeTranscript,
  type JoinInfo,
} from '@credfwd/shared';
import type { TlsIdentity } from '../../../packages/coordinator/src/core/tls-identity.ts';

// The peer stands in for a coordinator, so it presents a certificate made as a coordinator makes one.
export { createSelfSignedIdentity as createTlsIdentity, type TlsIdentity } from '../../../packages/coordinator/src/core/tls-identity.ts';

export interface ProtocolPeerOptions {
  tls: TlsIdentity;
  /** Listen on this port, e.g. to come back where a closed peer was; a free one when absent. */
  port?: number;
  clusterId?: string;
  /** The token the peer expects; a different one than the agent's makes it refuse with 4401. */
  token?: string;
  delivery?: DeliveryMode;
  region?: string | null;
  environ?: Record<string, string>;
  /** Pings every this many ms after welcome; no pings when absent. */
  pingIntervalMs?: number;
  /** Replaces the handshake: called with each hello instead of answering it. */
  onHello?: (ws: WebSocket) => void;
}

/** One authenticated agent connection, as the peer sees it. */
export class PeerSession {
  readonly ws: WebSocket;
  readonly key: Uint8Array;
  readonly agentId: string;
  readonly #frames: AgentMessage[] = [];
  readonly #waiters: Array<() => void> = [];

  constructor(ws: WebSocket, key: Uint8Array, agentId: string) {
    this.ws = ws;
    this.key = key;
    this.agentId = agentId;
  }

  /** @internal */
  push(frame: AgentMessage): void {
    this.#frames.push(frame);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  send(message: CoordinatorMessage): void {
    this.ws.send(encodeMessage(message));
  }

  async sendCredentials(seq: number, credentials: AwsCredentials, remainingSeconds = 3600, refreshInSeconds?: number): Promise<void> {
    this.send({ type: 'credentials', seq, remainingSeconds, refreshInSeconds, jwe: await sealJson(this.key, credentials) });
  }

  /** Resolves with the first frame received so far or later that matches. */
  async next<T extends AgentMessage>(match: (frame: AgentMessage) => frame is T): Promise<T> {
    for (;;) {
      const found = this.#frames.find(match);
      if (found) {
        this.#frames.splice(this.#frames.indexOf(found), 1);
        return found;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Resolves with a task's stdout so far once it matches, without taking any frame. */
  async stdoutMatching(taskId: string, pattern: RegExp): Promise<string> {
    for (;;) {
      const text = this.#text(taskId, 'stdout');
      if (pattern.test(text)) return text;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Output and exit of one task, once its exit frame arrives. */
  async taskResult(taskId: string): Promise<{ stdout: string; stderr: string; code: number | null; signal: string | null }> {
    const exit = await this.next((f): f is Extract<AgentMessage, { type: 'exit' }> => f.type === 'exit' && f.taskId === taskId);
    return { stdout: this.#text(taskId, 'stdout'), stderr: this.#text(taskId, 'stderr'), code: exit.code, signal: exit.signal };
  }

  #text(taskId: string, stream: 'stdout' | 'stderr'): string {
    return this.#frames
      .filter((f): f is Extract<AgentMessage, { type: 'output' }> => f.type === 'output' && f.taskId === taskId && f.stream === stream)
      .map((f) => Buffer.from(f.data, 'base64').toString())
      .join('');
  }

  /** Resolves with the close code the agent sent or the socket ended with. */
  closed(): Promise<number> {
    if (this.ws.readyState === this.ws.CLOSED) return Promise.resolve(1006);
    return once(this.ws, 'close').then(([code]) => code as number);
  }
}

/**
 * A minimal coordinator built from shared's protocol primitives, over real
 * TLS and websockets, for testing the agent without the coordinator package.
 */
export class ProtocolPeer {
  readonly address: string;
  readonly clusterId: string;
  readonly token: string;
  /** Every frame any agent sent, before or after authentication. */
  readonly frames: AgentMessage[] = [];
  /** Close codes of every connection, in order of closing. */
  readonly closeCodes: number[] = [];
  /** HTTP upgrade requests received, authenticated or not. */
  upgrades = 0;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions: PeerSession[] = [];
  readonly #waiters: Array<() => void> = [];
  #taken = 0;

  private constructor(server: Server, wss: WebSocketServer, options: ProtocolPeerOptions) {
    this.#server = server;
    this.#wss = wss;
    this.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.clusterId = options.clusterId ?? 'test-cluster';
    this.token = options.token ?? createJoinToken();
    server.on('upgrade', () => {
      this.upgrades += 1;
    });
    wss.on('connection', (ws) => this.#accept(ws, options));
  }

  static async start(options: ProtocolPeerOptions): Promise<ProtocolPeer> {
    const server = createServer({ cert: options.tls.cert, key: options.tls.key });
    const wss = new WebSocketServer({ server, path: '/v1/agent', maxPayload: MAX_PAYLOAD_BYTES });
    server.listen(options.port ?? 0, '127.0.0.1');
    await once(server, 'listening');
    return new ProtocolPeer(server, wss, options);
  }

  /** Join info for this peer, with the agent's token and pin overridable. */
  join(overrides: Partial<JoinInfo> = {}): JoinInfo {
    return { addresses: [this.address], clusterId: this.clusterId, token: this.token, pin: '', ...overrides };
  }

  /** Resolves with the next authenticated session not yet taken by a test. */
  async nextSession(): Promise<PeerSession> {
    while (this.#sessions.length <= this.#taken) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.#sessions[this.#taken++]!;
  }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
    this.#server.close();
    this.#server.closeAllConnections();
    await once(this.#server, 'close').catch(() => {});
  }

  #accept(ws: WebSocket, options: ProtocolPeerOptions): void {
    const own = createExchangeKeyPair();
    const nonce = createNonce();
    let transcript: HandshakeTranscript | undefined;
    let session: PeerSession | undefined;
    let ping: NodeJS.Timeout | undefined;
    ws.on('close', (code) => {
      clearInterval(ping);
      this.closeCodes.push(code);
    });
    ws.on('message', (data) => {
      const frame = decodeAgentMessage(data);
      this.frames.push(frame);
      if (session) {
        session.push(frame);
      } else if (frame.type === 'hello') {
        if (options.onHello) return options.onHello(ws);
        transcript = { nonce, clusterId: frame.clusterId, agentId: frame.agentId, agentPublicKey: frame.publicKey, coordinatorPublicKey: own.publicKey };
        ws.send(encodeMessage({ type: 'challenge', nonce, publicKey: own.publicKey }));
      } else if (frame.type === 'proof' && transcript) {
        if (!verifyProof(tokenVerifier(this.token), transcript, frame.mac)) return ws.close(CloseCode.authFailed);
        const key = deriveSessionKey(own, transcript.agentPublicKey, transcript);
        const established = new PeerSession(ws, key, transcript.agentId);
        session = established;
        void sealJson(key, options.environ ?? {}).then((environ) => {
          ws.send(encodeMessage({ type: 'welcome', delivery: options.delivery ?? 'env', region: options.region ?? null, environ }));
          if (options.pingIntervalMs) ping = setInterval(() => ws.ping(), options.pingIntervalMs);
          this.#sessions.push(established);
          for (const wake of this.#waiters.splice(0)) wake();
        });
      }
    });
  }
}
