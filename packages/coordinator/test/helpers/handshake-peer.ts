import WebSocket from 'ws';
import { PROTOCOL_VERSION, computeProof, createExchangeKeyPair, deriveSessionKey, tokenVerifier, type ExchangeKeyPair, type HandshakeTranscript } from '@credfwd/shared';
import { within } from '../../../../tests/helpers/deadline.ts';

/** A frame the coordinator sent, parsed but not schema-checked: the peer must see whatever arrives. */
export type Frame = Record<string, unknown>;

/** Who the peer says it is, unless a call says otherwise. */
export interface PeerIdentity {
  clusterId: string;
  agentId: string;
  token: string;
}

/**
 * The agent end of one session, speaking the handshake by hand so a test can
 * send what a real agent never would. Keeps every frame and its raw text, so
 * a test can look for a secret in the clear; every wait has a deadline.
 */
export class HandshakePeer {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  readonly closed: Promise<number>;
  readonly keys: ExchangeKeyPair = createExchangeKeyPair();
  readonly ws: WebSocket;
  readonly #identity: PeerIdentity;
  readonly #waitMs: number;
  readonly #waiters: Array<() => void> = [];

  constructor(ws: WebSocket, identity: PeerIdentity, waitMs: number) {
    this.ws = ws;
    this.#identity = identity;
    this.#waitMs = waitMs;
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    const wake = (): void => { for (const waiter of this.#waiters.splice(0)) waiter(); };
    ws.on('message', (data: Buffer) => {
      this.raw.push(data.toString('utf8'));
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
      wake();
    });
    ws.on('close', wake);
    // Refusals may break the socket under a write in flight; the close code is what tests look at.
    ws.on('error', () => undefined);
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  hello(overrides: Frame = {}): void {
    const { clusterId, agentId } = this.#identity;
    this.send({ type: 'hello', v: PROTOCOL_VERSION, clusterId, agentId, publicKey: this.keys.publicKey, ...overrides });
  }

  /** The first frame of `type` received so far or later; rejects if the socket closes first or the deadline passes. */
  next(type: string): Promise<Frame> {
    const wait = async (): Promise<Frame> => {
      for (;;) {
        const found = this.frames.find((f) => f.type === type);
        if (found) return found;
        if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed before a ${type} frame`);
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    };
    return within(wait(), this.#waitMs, `no ${type} frame`);
  }

  /** The close code the session closed the socket with. */
  closeCode(): Promise<number> {
    return within(this.closed, this.#waitMs, 'the session did not close the socket');
  }

  /** Answers the challenge with a proof over the transcript `claim` describes; returns the session key the agent would derive. */
  async prove(claim: Partial<PeerIdentity> = {}): Promise<Uint8Array> {
    const { token, agentId, clusterId } = { ...this.#identity, ...claim };
    const challenge = await this.next('challenge');
    const transcript: HandshakeTranscript = { nonce: String(challenge.nonce), clusterId, agentId, agentPublicKey: this.keys.publicKey, coordinatorPublicKey: String(challenge.publicKey) };
    this.send({ type: 'proof', mac: computeProof(tokenVerifier(token), transcript) });
    return deriveSessionKey(this.keys, transcript.coordinatorPublicKey, transcript);
  }
}
