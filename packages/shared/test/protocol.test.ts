import test from 'ava';
import { CredfwdError } from '../src/errors.ts';
import {
  decodeAgentMessage,
  decodeCoordinatorMessage,
  encodeMessage,
  PROTOCOL_VERSION,
  type AgentMessage,
  type CoordinatorMessage,
} from '../src/protocol.ts';

const VIOLATION = { instanceOf: CredfwdError, code: 'PROTOCOL_VIOLATION' };
const JWE = 'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y2lwaGVy.dGFn';

const agentFrames: AgentMessage[] = [
  { type: 'hello', v: PROTOCOL_VERSION, clusterId: 'cluster-1', agentId: 'agent.1_a', publicKey: 'pub_KEY-1' },
  { type: 'proof', mac: 'bWFj' },
  { type: 'ack', seq: 0 },
  { type: 'output', taskId: 't1', stream: 'stderr', data: Buffer.from('line\n').toString('base64') },
  { type: 'output', taskId: 't1', stream: 'stdout', data: Buffer.alloc(32 * 1024, 0xff).toString('base64') },
  { type: 'exit', taskId: 't1', code: 0, signal: null },
  { type: 'exit', taskId: 't2', code: null, signal: 'SIGTERM' },
];

const coordinatorFrames: CoordinatorMessage[] = [
  { type: 'challenge', nonce: 'bm9uY2U', publicKey: 'cHVi' },
  { type: 'welcome', delivery: 'endpoint', region: 'eu-west-1', environ: JWE },
  { type: 'welcome', delivery: 'none', region: null, environ: JWE },
  { type: 'credentials', seq: 3, remainingSeconds: 900, jwe: JWE },
  { type: 'run', taskId: 't1', argv: ['aws', 'sts', 'get-caller-identity'] },
  { type: 'run', taskId: 't2', argv: ['sh'], env: JWE, cwd: '/tmp', timeoutMs: 1000 },
];

/** Distinct test titles for frames of the same type. */
function label(frame: AgentMessage | CoordinatorMessage, index: number): string {
  return `${frame.type} frame (#${index + 1})`;
}

for (const [index, frame] of agentFrames.entries()) {
  test(`decodeAgentMessage accepts a valid ${label(frame, index)}, as text or Buffer`, (t) => {
    t.deepEqual(decodeAgentMessage(encodeMessage(frame)), frame);
    t.deepEqual(decodeAgentMessage(Buffer.from(encodeMessage(frame))), frame);
  });
}

for (const [index, frame] of coordinatorFrames.entries()) {
  test(`decodeCoordinatorMessage accepts a valid ${label(frame, index)}, as text or Buffer`, (t) => {
    t.deepEqual(decodeCoordinatorMessage(encodeMessage(frame)), frame);
    t.deepEqual(decodeCoordinatorMessage(Buffer.from(encodeMessage(frame))), frame);
  });
}

const badAgentFrames: Array<[string, unknown]> = [
  ['invalid JSON', '{"type":"ack",'],
  ['a JSON array', '[]'],
  ['JSON null', 'null'],
  ['a frame without a type', '{"seq":1}'],
  ['an unknown type', '{"type":"credentials","seq":1,"remainingSeconds":1,"jwe":"a"}'],
  ['an extra field', JSON.stringify({ type: 'ack', seq: 1, extra: true })],
  ['a string where a number belongs', JSON.stringify({ type: 'ack', seq: '1' })],
  ['a negative seq', JSON.stringify({ type: 'ack', seq: -1 })],
  ['a fractional version', JSON.stringify({ type: 'hello', v: 1.5, clusterId: 'c', agentId: 'a', publicKey: 'k' })],
  ['an id with a slash', JSON.stringify({ type: 'hello', v: 1, clusterId: '../c', agentId: 'a', publicKey: 'k' })],
  ['an unknown output stream', JSON.stringify({ type: 'output', taskId: 't', stream: 'stdin', data: 'YQ==' })],
  ['output as text rather than base64 bytes', JSON.stringify({ type: 'output', taskId: 't', stream: 'stdout', data: 'line\n' })],
  ['empty output', JSON.stringify({ type: 'output', taskId: 't', stream: 'stdout', data: '' })],
  ['output over 32 KiB', JSON.stringify({ type: 'output', taskId: 't', stream: 'stdout', data: Buffer.alloc(32 * 1024 + 3).toString('base64') })],
  ['a missing field', JSON.stringify({ type: 'exit', taskId: 't', code: 0 })],
  ['a non-text frame', 42],
];

for (const [what, frame] of badAgentFrames) {
  test(`decodeAgentMessage refuses ${what} with PROTOCOL_VIOLATION`, (t) => {
    t.throws(() => decodeAgentMessage(frame), VIOLATION);
  });
}

const badCoordinatorFrames: Array<[string, unknown]> = [
  ['invalid JSON', 'nope'],
  ['an agent frame', JSON.stringify({ type: 'ack', seq: 1 })],
  ['an unknown delivery mode', JSON.stringify({ type: 'welcome', delivery: 'file', region: null, environ: JWE })],
  ['a zero remainingSeconds', JSON.stringify({ type: 'credentials', seq: 1, remainingSeconds: 0, jwe: JWE })],
  ['an empty argv', JSON.stringify({ type: 'run', taskId: 't', argv: [] })],
  ['an extra field', JSON.stringify({ type: 'challenge', nonce: 'n', publicKey: 'k', token: 'x' })],
  ['a JWE with foreign characters', JSON.stringify({ type: 'credentials', seq: 1, remainingSeconds: 1, jwe: '{"a":1}' })],
];

for (const [what, frame] of badCoordinatorFrames) {
  test(`decodeCoordinatorMessage refuses ${what} with PROTOCOL_VIOLATION`, (t) => {
    t.throws(() => decodeCoordinatorMessage(frame), VIOLATION);
  });
}

test('decodeAgentMessage names where a frame is wrong without echoing its values', (t) => {
  const err = t.throws(() => decodeAgentMessage(JSON.stringify({ type: 'proof', mac: 'not base64url: hunter2' })), VIOLATION);
  t.regex(err?.message ?? '', /at mac/);
  t.false(err?.message.includes('hunter2'));
});
