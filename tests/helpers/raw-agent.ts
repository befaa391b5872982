import WebSocket from 'ws';
import {
  PROTOCOL_VERSION,
  computeProof,
  createExchangeKeyPair,
  deriveSessionKey,
  tokenVerifier,
  type ExchangeKeyPair,
  type JoinInfo,
} from '@credfwd/shared';

/** A frame the coordinator sent, parsed but not schema-checked: a raw peer must see whatever arrives. */
export type RawFrame = Record<string, unknown> & { type?: unknown };

/**
 * A websocket to the agent port that speaks the protocol by hand, so a test
 * can send what a real agent never would. It skips the pin: it exercises
 * the coordinator, not the agent.
 */
export class RawAgent {
  readonly ws: WebSocket;
  /** Settles with the close code once the socket is closed. */
  readonly closed: Promise<number>;
  readonly #frames: RawFrame[] = [];
  readonly #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    const wake = (): void => {
      for (const waiter of this.#waiters.splice(0)) waiter();
    };
    ws.on('message', (data: Buffer) => {
      this.#frames.push(JSON.parse(data.toString('utf8')) as RawFrame);
      wake();
    });
    ws.on('close', wake);
    // Refusals break the socket under writes in flight; the close code is what tests look at.
    ws.on('error', () => undefined);
  }

  /** Opens a socket from `localAddress` (any of 127.0.0.0/8 reaches loopback on Linux). */
  static open(address: string, localAddress = '127.0.0.1'): Promise<RawAgent> {
    const ws = new WebSocket(`wss://${address}/v1/agent`, { rejectUnauthorized: false, localAddress });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawAgent(ws)));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first frame of `type` received so far or later; rejects if the socket closes first. */
  async next(type: string): Promise<RawFrame> {
    for (;;) {
      const index = this.#frames.findIndex((f) => f.type === type);
      if (index >= 0) return this.#frames.splice(index, 1)[0]!;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed before a ${type} frame arrived`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /**
   * Runs the handshake with `join`'s token as a real agent would and returns
   * the hello and proof it sent, which an eavesdropper could have recorded.
   */
  async authenticate(join: JoinInfo, agentId: string, keyPair: ExchangeKeyPair = createExchangeKeyPair()): Promise<{ hello: RawFrame; mac: string; key: Uint8Array }> {
    const hello = { type: 'hello', v: PROTOCOL_VERSION, clusterId: join.clusterId, agentId, publicKey: keyPair.publicKey };
    this.send(hello);
    const challenge = await this.next('challenge');
    const transcript = {
      nonce: String(challenge.nonce),
      clusterId: join.clusterId,
      agentId,
      agentPublicKey: keyPair.publicKey,
      coordinatorPublicKey: String(challenge.publicKey),
    };
    const mac = computeProof(tokenVerifier(join.token), transcript);
    this.send({ type: 'proof', mac });
    await this.next('welcome');
    return { hello, mac, key: deriveSessionKey(keyPair, transcript.coordinatorPublicKey, transcript) };
  }
}
