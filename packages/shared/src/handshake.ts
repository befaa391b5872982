import {
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { secretsEqual } from './secrets-equal.ts';
import { CredfwdError } from './errors.ts';

/** One side's ephemeral X25519 key for a connection (agent: per process). */
export interface ExchangeKeyPair {
  privateKey: KeyObject;
  /** Raw public key, base64url, as it travels in `hello` / `challenge`. */
  publicKey: string;
}

/** Generates an X25519 key pair for the handshake's key agreement. */
export function createExchangeKeyPair(): ExchangeKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('x25519 key export returned no public value');
  return { privateKey, publicKey: jwk.x };
}

/** A fresh challenge nonce: 32 random bytes, base64url. */
export function createNonce(): string {
  return randomBytes(32).toString('base64url');
}

/** What the HMAC proof and the session key are bound to. */
export interface HandshakeTranscript {
  nonce: string;
  clusterId: string;
  agentId: string;
  agentPublicKey: string;
  coordinatorPublicKey: string;
}

function transcriptBytes(t: HandshakeTranscript): Buffer {
  // Length-prefixed so that no two transcripts serialise alike.
  const parts = [t.nonce, t.clusterId, t.agentId, t.agentPublicKey, t.coordinatorPublicKey];
  return Buffer.concat(parts.flatMap((p) => {
    const bytes = Buffer.from(p, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    return [len, bytes];
  }));
}

/**
 * The token verifier: SHA-256 of the join token's bytes, base64url. Proofs are
 * keyed by it rather than by the token, so a coordinator (and Redis) need
 * only ever hold the verifier after the join string is made: a stolen
 * verifier cannot be turned back into a join string to hand out.
 */
export function tokenVerifier(token: string): string {
  return createHash('sha256').update(Buffer.from(token, 'base64url')).digest('base64url');
}

/**
 * HMAC-SHA256 keyed by the token verifier over the transcript. Binding both
 * public keys means a relay that swaps in its own key cannot reuse the proof.
 */
export function computeProof(verifier: string, transcript: HandshakeTranscript): string {
  return createHmac('sha256', Buffer.from(verifier, 'base64url')).update(transcriptBytes(transcript)).digest('base64url');
}

/** Checks a proof in constant time against the token verifier. */
export function verifyProof(verifier: string, transcript: HandshakeTranscript, mac: string): boolean {
  const expected = Buffer.from(computeProof(verifier, transcript), 'base64url');
  return secretsEqual(Buffer.from(mac, 'base64url'), expected);
}

/**
 * The connection's AES-256 key: X25519 shared secret through HKDF-SHA256,
 * salted with the nonce and bound to the transcript. Computed once per
 * connection so each push costs one AES-GCM seal.
 */
export function deriveSessionKey(own: ExchangeKeyPair, peerPublicKey: string, transcript: HandshakeTranscript): Uint8Array {
  let shared: Buffer;
  try {
    const peer = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerPublicKey }, format: 'jwk' });
    // Low-order points (e.g. all zeros) pass the import but fail here.
    shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer });
  } catch (cause) {
    throw new CredfwdError('PROTOCOL_VIOLATION', 'peer public key is not a usable X25519 key', 'upgrade the agent and coordinator to the same credfwd version', { cause });
  }
  const info = Buffer.concat([Buffer.from('credfwd v1 session key', 'utf8'), transcriptBytes(transcript)]);
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.from(transcript.nonce, 'base64url'), info, 32));
}
