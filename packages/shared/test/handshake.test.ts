import test from 'ava';
import { CredfwdError } from '../src/errors.ts';
import {
  computeProof,
  createExchangeKeyPair,
  createNonce,
  deriveSessionKey,
  tokenVerifier,
  verifyProof,
  type HandshakeTranscript,
} from '../src/handshake.ts';
import { createJoinToken } from '../src/join-string.ts';

const agent = createExchangeKeyPair();
const coordinator = createExchangeKeyPair();
const token = tokenVerifier(createJoinToken());
const transcript: HandshakeTranscript = {
  nonce: createNonce(),
  clusterId: 'cluster-1',
  agentId: 'agent-1',
  agentPublicKey: agent.publicKey,
  coordinatorPublicKey: coordinator.publicKey,
};

test('createExchangeKeyPair exports a raw 32-byte X25519 public key', (t) => {
  t.is(Buffer.from(agent.publicKey, 'base64url').length, 32);
  t.not(agent.publicKey, coordinator.publicKey);
});

test('tokenVerifier is SHA-256 of the token bytes: 32 bytes, stable, and not the token', (t) => {
  const joinToken = createJoinToken();
  const verifier = tokenVerifier(joinToken);
  t.is(Buffer.from(verifier, 'base64url').length, 32);
  t.is(tokenVerifier(joinToken), verifier);
  t.not(verifier, joinToken);
  t.not(tokenVerifier(createJoinToken()), verifier);
});

test('createNonce makes 32 random bytes, base64url', (t) => {
  const nonce = createNonce();
  t.is(Buffer.from(nonce, 'base64url').length, 32);
  t.not(createNonce(), nonce);
});

test('verifyProof accepts the proof made with the right token', (t) => {
  t.true(verifyProof(token, transcript, computeProof(token, transcript)));
});

test('verifyProof refuses a proof made with another token', (t) => {
  t.false(verifyProof(token, transcript, computeProof(tokenVerifier(createJoinToken()), transcript)));
});

test('verifyProof refuses a proof made for another nonce', (t) => {
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, nonce: createNonce() })));
});

test('verifyProof refuses a proof whose public key was swapped by a relay', (t) => {
  const relay = createExchangeKeyPair();
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, coordinatorPublicKey: relay.publicKey })));
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, agentPublicKey: relay.publicKey })));
});

test('verifyProof refuses a proof for another cluster or agent', (t) => {
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, clusterId: 'cluster-2' })));
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, agentId: 'agent-2' })));
});

test('verifyProof keeps fields apart: moving a character between them changes the proof', (t) => {
  // 'cluster-1' + 'agent-1' and 'cluster-1a' + 'gent-1' concatenate alike.
  t.false(verifyProof(token, transcript, computeProof(token, { ...transcript, clusterId: 'cluster-1a', agentId: 'gent-1' })));
});

test('verifyProof refuses a truncated or empty proof', (t) => {
  const mac = computeProof(token, transcript);
  t.false(verifyProof(token, transcript, mac.slice(0, -2)));
  t.false(verifyProof(token, transcript, ''));
});

test('deriveSessionKey agrees on both sides of a real X25519 exchange', (t) => {
  const agentKey = deriveSessionKey(agent, coordinator.publicKey, transcript);
  const coordinatorKey = deriveSessionKey(coordinator, agent.publicKey, transcript);
  t.is(agentKey.length, 32);
  t.deepEqual(agentKey, coordinatorKey);
});

test('deriveSessionKey differs for another nonce', (t) => {
  const key = deriveSessionKey(agent, coordinator.publicKey, transcript);
  const other = deriveSessionKey(agent, coordinator.publicKey, { ...transcript, nonce: createNonce() });
  t.notDeepEqual(key, other);
});

test('deriveSessionKey differs when a third key pair stands in for the peer', (t) => {
  const relay = createExchangeKeyPair();
  t.notDeepEqual(deriveSessionKey(agent, relay.publicKey, transcript), deriveSessionKey(coordinator, agent.publicKey, transcript));
});

test('deriveSessionKey rejects a peer key that is not X25519 with PROTOCOL_VIOLATION', (t) => {
  t.throws(() => deriveSessionKey(agent, 'AAAA', transcript), { instanceOf: CredfwdError, code: 'PROTOCOL_VIOLATION' });
});

// The all-zero (low-order) point passes the JWK import and fails only at derivation.
test('deriveSessionKey rejects a low-order peer key with PROTOCOL_VIOLATION', (t) => {
  const zero = Buffer.alloc(32).toString('base64url');
  t.throws(() => deriveSessionKey(agent, zero, transcript), { instanceOf: CredfwdError, code: 'PROTOCOL_VIOLATION' });
});
