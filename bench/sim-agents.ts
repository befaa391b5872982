/**
 * Many simulated agents in one process, each speaking the real protocol:
 * TLS with the pinned certificate, hello/challenge/proof/welcome, the
 * sealed environ and every sealed credentials push opened and checked as a
 * real agent does, then acknowledged. No workloads, no endpoint: what is
 * measured is the coordinator's fan-out. Driven by bench/run.ts over IPC.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import {
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  awsCredentialsSchema,
  computeProof,
  createExchangeKeyPair,
  decodeCoordinatorMessage,
  deriveSessionKey,
  encodeMessage,
  openJson,
  parseJoinString,
  tokenVerifier,
  type CoordinatorMessage,
  type ExchangeKeyPair,
  type JoinInfo,
} from '@credfwd/shared';
import { firstAddressIndex } from '@credfwd/worker-agent';
import { sleep } from './lib/deadline.ts';
import { forEachLimited } from './lib/pool.ts';
import { serve } from './lib/worker-side.ts';

export interface ConnectParams {
  /** A secret; arrives over IPC only. */
  joinString: string;
  /** Agent ids are `${idPrefix}-${i}` for i in [0, count). */
  idPrefix: string;
  count: number;
  /** Handshakes in flight at once: enough to keep the coordinator busy without tripping its 5 s handshake deadline. */
  concurrency: number;
}

export interface ConnectAnswer {
  connected: number;
  failed: number;
  /** A few distinct failure reasons, for the report. */
  reasons: string[];
}

export interface StatusAnswer {
  open: number;
  acks: number;
  /** Pushes that failed to open or check: must stay 0. */
  badPushes: number;
}

const ATTEMPTS = 4;
const RETRY_DELAY_MS = 500;

let acks = 0;
let badPushes = 0;
const sockets = new Set<WebSocket>();

/**
 * One simulated agent connection. Resolves once it holds and has
 * acknowledged its first credentials; rejects if the connection ends first.
 */
function runAgent(join: JoinInfo, agentId: string, keyPair: ExchangeKeyPair): Promise<void> {
  return new Promise((resolve, reject) => {
    // The replica a real agent of this id starts with: a fleet given every replica's address spreads as a real one does.
    const address = join.addresses[firstAddressIndex(agentId, join.addresses.length)] ?? '';
    const ws = new WebSocket(`wss://${address}/v1/agent`, {
      // The certificate is self-signed: the pin below is the whole check, as in the real agent.
      rejectUnauthorized: false,
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD_BYTES,
      handshakeTimeout: 10_000,
      followRedirects: false,
    });
    sockets.add(ws);
    let key: Uint8Array | undefined;
    let held = -1;
    let inbox = Promise.resolve();
    ws.on('upgrade', (response: IncomingMessage) => {
      const der = (response.socket as TLSSocket).getPeerCertificate(true).raw;
      if (!der || createHash('sha256').update(der).digest('hex') !== join.pin) {
        ws.terminate();
        reject(new Error('certificate does not match the pin'));
      }
    });
    ws.on('open', () => {
      ws.send(encodeMessage({ type: 'hello', v: PROTOCOL_VERSION, clusterId: join.clusterId, agentId, publicKey: keyPair.publicKey }));
    });
    const handle = async (message: CoordinatorMessage): Promise<void> => {
      switch (message.type) {
        case 'challenge': {
          const transcript = { nonce: message.nonce, clusterId: join.clusterId, agentId, agentPublicKey: keyPair.publicKey, coordinatorPublicKey: message.publicKey };
          key = deriveSessionKey(keyPair, message.publicKey, transcript);
          // Keyed by the token's verifier, as the real agent does: the coordinator keeps only the verifier.
          ws.send(encodeMessage({ type: 'proof', mac: computeProof(tokenVerifier(join.token), transcript) }));
          return;
        }
        case 'welcome':
          if (key) await openJson(key, message.environ);
          return;
        case 'credentials': {
          if (!key) throw new Error('credentials before the handshake');
          awsCredentialsSchema.parse(await openJson(key, message.jwe));
          if (message.seq < held) return;
          held = message.seq;
          ws.send(encodeMessage({ type: 'ack', seq: message.seq }));
          acks++;
          resolve();
          return;
        }
        case 'run':
          return;
      }
    };
    ws.on('message', (data) => {
      inbox = inbox.then(() => handle(decodeCoordinatorMessage(data))).catch(() => {
        badPushes++;
        ws.close(4400);
      });
    });
    ws.on('error', () => { /* the close that follows says it all */ });
    ws.on('close', (code) => {
      sockets.delete(ws);
      reject(new Error(`closed with ${code} before holding credentials`));
    });
  });
}

async function connect(params: ConnectParams): Promise<ConnectAnswer> {
  const join = parseJoinString(params.joinString);
  let connected = 0;
  let failed = 0;
  const reasons = new Set<string>();
  const one = async (agentId: string): Promise<void> => {
    // One key pair per agent process, as the real agent has; each sim stands for one process.
    const keyPair = createExchangeKeyPair();
    for (let attempt = 1; ; attempt++) {
      try {
        await runAgent(join, agentId, keyPair);
        connected++;
        return;
      } catch (err) {
        if (reasons.size < 5) reasons.add(err instanceof Error ? err.message : String(err));
        if (attempt === ATTEMPTS) {
          failed++;
          return;
        }
        await sleep(RETRY_DELAY_MS * attempt);
      }
    }
  };
  await forEachLimited(params.count, params.concurrency, (i) => one(`${params.idPrefix}-${i}`));
  return { connected, failed, reasons: [...reasons] };
}

serve({
  connect: (params) => connect(params as ConnectParams),
  status: (): StatusAnswer => ({ open: sockets.size, acks, badPushes }),
  exit: () => {
    setImmediate(() => process.exit(0));
  },
});
