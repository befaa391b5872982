import WebSocket, { type RawData } from 'ws';
import {
  CloseCode,
  CredfwdError,
  HANDSHAKE_TIMEOUT_MS,
  MAX_FRAGMENTS,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  computeProof,
  tokenVerifier,
  decodeCoordinatorMessage,
  deriveSessionKey,
  encodeMessage,
  isCredfwdError,
  type AgentMessage,
  type Challenge,
  type CredentialsPush,
  type ExchangeKeyPair,
  type JoinInfo,
  type Logger,
  type Run,
  type Welcome,
} from '@credfwd/shared';
import { HeartbeatMonitor } from './heartbeat-monitor.ts';
import { openStringRecord } from './open-string-record.ts';
import type { PinnedAgent } from './pinned-agent.ts';
import type { WorkloadSettings } from './task-environment.ts';

/** What one authenticated connection agreed on. */
export interface Session extends WorkloadSettings {
  /** AES-256 key that opens this connection's sealed payloads. */
  key: Uint8Array;
}

/** Receives a connection's events; frames are handed over one at a time, in order. */
export interface ConnectionHandlers {
  /** Frames after the welcome wait until this settles, so they find whatever it sets up. */
  welcome(session: Session): Promise<void>;
  message(message: CredentialsPush | Run, session: Session): Promise<void>;
}

/** How a connection ended: the close code (1006 when it simply broke) and the first error seen. */
export interface ConnectionEnd {
  code: number;
  error: Error | undefined;
}

/** What one {@link AgentConnection} needs; the key pair and https agent are shared by all of an agent's connections. */
export interface AgentConnectionOptions {
  /** `host:port` of one coordinator. */
  address: string;
  join: JoinInfo;
  agentId: string;
  keyPair: ExchangeKeyPair;
  httpsAgent: PinnedAgent;
  heartbeatIntervalMs: number;
  logger: Logger;
  handlers: ConnectionHandlers;
}

type State = 'connecting' | 'challenge' | 'welcome' | 'ready' | 'closing';

// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE_MS = 2_000;

/**
 * One websocket to one coordinator: the handshake (hello, challenge, proof,
 * welcome), then credentials and run frames. Any frame that fails its schema
 * or arrives out of turn closes the socket with 4400; nothing here throws.
 */
export class AgentConnection {
  /** Settles once the socket is closed, however that happened. */
  readonly ended: Promise<ConnectionEnd>;
  readonly #options: AgentConnectionOptions;
  readonly #logger: Logger;
  readonly #heartbeat: HeartbeatMonitor;
  readonly #resolveEnded: (end: ConnectionEnd) => void;
  #ws: WebSocket | undefined;
  #state: State = 'connecting';
  #inbox: Promise<void> = Promise.resolve();
  #key: Uint8Array | undefined;
  #session: Session | undefined;
  #error: Error | undefined;
  #closeTimer: NodeJS.Timeout | undefined;

  constructor(options: AgentConnectionOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ address: options.address });
    let resolveEnded!: (end: ConnectionEnd) => void;
    this.ended = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.#resolveEnded = resolveEnded;
    this.#heartbeat = new HeartbeatMonitor(options.heartbeatIntervalMs, () => {
      this.#logger.warn({ silentForMs: 2 * options.heartbeatIntervalMs }, 'no heartbeat from coordinator; dropping the connection');
      this.#ws?.terminate();
    });
  }

  /** Opens the socket and runs the handshake. */
  start(): void {
    const ws = new WebSocket(`wss://${this.#options.address}/v1/agent`, {
      agent: this.#options.httpsAgent,
      maxPayload: MAX_PAYLOAD_BYTES,
      maxFragments: MAX_FRAGMENTS,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      // Frames are small JSON or ciphertext that does not compress; inflating is only an attack surface.
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.#ws = ws;
    this.#logger.debug('connecting to coordinator');
    ws.on('open', () => {
      if (this.#state !== 'connecting') return;
      this.#state = 'challenge';
      this.#heartbeat.start();
      const { join, agentId, keyPair } = this.#options;
      this.#send({ type: 'hello', v: PROTOCOL_VERSION, clusterId: join.clusterId, agentId, publicKey: keyPair.publicKey });
    });
    ws.on('ping', () => this.#heartbeat.beat());
    // A coordinator holding our output back (its reader is slow) cannot read pongs, so it pongs us instead of pinging.
    ws.on('pong', () => this.#heartbeat.beat());
    ws.on('message', (data, isBinary) => {
      this.#inbox = this.#inbox.then(() => this.#handle(data, isBinary)).catch((err: unknown) => this.#reject(err));
    });
    ws.on('error', (err) => {
      this.#error ??= err;
    });
    ws.on('close', (code) => {
      this.#state = 'closing';
      this.#heartbeat.close();
      clearTimeout(this.#closeTimer);
      this.#resolveEnded({ code, error: this.#error });
    });
  }

  /** Sends a frame once the handshake is done, calling `written` once it has left (or failed); false if the connection cannot take it. */
  send(message: AgentMessage, written?: () => void): boolean {
    return this.#state === 'ready' && this.#send(message, written);
  }

  /** Bytes handed to the socket but not yet written to the network. */
  bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Closes with `code`; idempotent. */
  close(code: number): void {
    if (this.#state === 'closing') return;
    this.#state = 'closing';
    this.#heartbeat.close();
    const ws = this.#ws;
    if (!ws) {
      this.#resolveEnded({ code, error: undefined });
      return;
    }
    ws.close(code);
    this.#closeTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  }

  #send(message: AgentMessage, written?: () => void): boolean {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeMessage(message), written && (() => written()));
    return true;
  }

  async #handle(data: RawData, isBinary: boolean): Promise<void> {
    if (this.#state === 'closing') return;
    if (isBinary) throw violation('a binary frame');
    const message = decodeCoordinatorMessage(data);
    if (message.type === 'challenge') {
      if (this.#state !== 'challenge') throw violation('a challenge out of turn');
      this.#answer(message);
    } else if (message.type === 'welcome') {
      if (this.#state !== 'welcome' || !this.#key) throw violation('a welcome out of turn');
      await this.#accept(message, this.#key);
    } else {
      if (this.#state !== 'ready' || !this.#session) throw violation(`a ${message.type} frame before welcome`);
      await this.#options.handlers.message(message, this.#session);
    }
  }

  #answer(challenge: Challenge): void {
    const { join, agentId, keyPair } = this.#options;
    const transcript = {
      nonce: challenge.nonce,
      clusterId: join.clusterId,
      agentId,
      agentPublicKey: keyPair.publicKey,
      coordinatorPublicKey: challenge.publicKey,
    };
    this.#key = deriveSessionKey(keyPair, challenge.publicKey, transcript);
    this.#state = 'welcome';
    this.#send({ type: 'proof', mac: computeProof(tokenVerifier(join.token), transcript) });
  }

  async #accept(welcome: Welcome, key: Uint8Array): Promise<void> {
    const environ = await openStringRecord(key, welcome.environ, 'environ');
    this.#session = { key, delivery: welcome.delivery, region: welcome.region, environ };
    this.#state = 'ready';
    await this.#options.handlers.welcome(this.#session);
  }

  #reject(err: unknown): void {
    if (this.#state === 'closing') return;
    if (isCredfwdError(err)) {
      this.#logger.warn({ code: err.code, reason: err.message }, 'bad frame from coordinator; closing the connection');
    } else {
      this.#logger.error({ err }, 'failed to handle a frame from the coordinator; closing the connection');
    }
    this.close(CloseCode.badFrame);
  }
}

function violation(what: string): CredfwdError {
  return new CredfwdError('PROTOCOL_VIOLATION', `the coordinator sent ${what}`, `expected the protocol v${PROTOCOL_VERSION} handshake order`);
}
