// zod/mini, not zod: the same checks without the chainable methods classic zod binds to every
// schema at start, which cost every idle agent megabytes.
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { CredfwdError } from './errors.ts';

/** Wire protocol version; a peer speaking another one is closed with 4409. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest frame either side accepts. Output chunks are capped at 32 KiB and
 * everything else is small, so anything near this is hostile.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/**
 * Most frames one message may be split into. Peers send every message as a
 * single frame; the cap stops a message dribbled out in tiny fragments from
 * holding a buffer per fragment while staying under the payload cap.
 */
export const MAX_FRAGMENTS = 16;

/** Largest stdout/stderr chunk one `output` frame carries. */
export const MAX_OUTPUT_CHUNK_BYTES = 32 * 1024;

/** Time an agent has to complete the handshake before it is closed with 4408. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * Agents never serve or inject credentials with less life than this. The
 * SDKs refresh 5 minutes before expiry and the coordinator refreshes at half
 * life (at the latest 5 minutes before expiry), so credentials this close to
 * expiry mean the coordinator has been unreachable for a long while.
 */
export const MIN_REMAINING_SECONDS = 120;

/** How long before Expiration the AWS SDKs treat container credentials as stale (the JS SDK's window; botocore's is wider). */
export const SDK_REFRESH_WINDOW_SECONDS = 300;

/** Default heartbeat period; a peer silent for two periods is gone. */
export const HEARTBEAT_INTERVAL_MS = 15_000;

export const CloseCode = {
  normal: 1000,
  /** RFC 6455: the server is restarting; agents reconnect, to another replica if there is one. */
  serviceRestart: 1012,
  /** RFC 6455: the server cannot serve now (its registry is unreachable); agents retry with backoff. */
  tryAgainLater: 1013,
  badFrame: 4400,
  authFailed: 4401,
  clusterRevoked: 4403,
  handshakeTimeout: 4408,
  versionMismatch: 4409,
  /** Another agent, with another key pair, is connected under this agent id; the newcomer is refused and must not retry. */
  agentIdInUse: 4410,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

// zod/mini loads no messages of its own: without these, every refusal would say only "Invalid input".
z.config(en());

const id = z.string().check(z.minLength(1), z.maxLength(128), z.regex(/^[A-Za-z0-9._-]+$/));
const b64url = z.string().check(z.minLength(1), z.maxLength(4096), z.regex(/^[A-Za-z0-9_-]+$/));
const jwe = z.string().check(z.minLength(1), z.maxLength(MAX_PAYLOAD_BYTES), z.regex(/^[A-Za-z0-9_.-]+$/));
const seq = z.int().check(z.nonnegative());

export const deliveryModeSchema = z.enum(['env', 'endpoint', 'imds', 'process', 'none']);
/** How an agent hands credentials to workloads; `none` is credentials=null. */
export type DeliveryMode = z.infer<typeof deliveryModeSchema>;

export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  v: z.int(),
  clusterId: id,
  agentId: id,
  publicKey: b64url,
});
export const proofSchema = z.strictObject({ type: z.literal('proof'), mac: b64url });
export const ackSchema = z.strictObject({ type: z.literal('ack'), seq });
export const outputSchema = z.strictObject({
  type: z.literal('output'),
  taskId: id,
  stream: z.enum(['stdout', 'stderr']),
  /** The output's bytes exactly as the task wrote them, base64: output need not be UTF-8. */
  data: z.string().check(z.minLength(1), z.maxLength(Math.ceil(MAX_OUTPUT_CHUNK_BYTES / 3) * 4), z.regex(/^[A-Za-z0-9+/]+={0,2}$/)),
});
export const exitSchema = z.strictObject({
  type: z.literal('exit'),
  taskId: id,
  code: z.nullable(z.int()),
  signal: z.nullable(z.string().check(z.maxLength(32))),
});

export const challengeSchema = z.strictObject({ type: z.literal('challenge'), nonce: b64url, publicKey: b64url });
export const welcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  delivery: deliveryModeSchema,
  region: z.nullable(z.string().check(z.maxLength(64))),
  /** The cluster's environ, sealed like credentials: values may be secrets. */
  environ: jwe,
});
export const credentialsSchema = z.strictObject({
  type: z.literal('credentials'),
  seq,
  remainingSeconds: z.int().check(z.positive()),
  /**
   * When the coordinator plans the next push, in seconds from now. The
   * endpoint advertises an earlier Expiration from it, so SDK clients come
   * back for the new credentials soon after the push instead of near expiry.
   */
  refreshInSeconds: z.optional(z.int().check(z.positive())),
  jwe,
});

/** What a supervised command does when new credentials arrive: nothing, restart, or receive a signal (`signal:SIGHUP`). */
export const onRefreshSchema = z.union([z.literal('none'), z.literal('restart'), z.string().check(z.regex(/^signal:SIG[A-Z0-9]{2,10}$/))]);
export type OnRefresh = z.infer<typeof onRefreshSchema>;
export const runSchema = z.strictObject({
  type: z.literal('run'),
  taskId: id,
  argv: z.array(z.string().check(z.maxLength(32 * 1024))).check(z.minLength(1), z.maxLength(1024)),
  /** Extra environment for this task only, sealed. */
  env: z.optional(jwe),
  cwd: z.optional(z.string().check(z.maxLength(4096))),
  timeoutMs: z.optional(z.int().check(z.positive())),
  onRefresh: z.optional(onRefreshSchema),
});

export const agentMessageSchema = z.discriminatedUnion('type', [helloSchema, proofSchema, ackSchema, outputSchema, exitSchema]);
export const coordinatorMessageSchema = z.discriminatedUnion('type', [challengeSchema, welcomeSchema, credentialsSchema, runSchema]);

export type Hello = z.infer<typeof helloSchema>;
export type Proof = z.infer<typeof proofSchema>;
export type Ack = z.infer<typeof ackSchema>;
export type Output = z.infer<typeof outputSchema>;
export type Exit = z.infer<typeof exitSchema>;
export type Challenge = z.infer<typeof challengeSchema>;
export type Welcome = z.infer<typeof welcomeSchema>;
export type CredentialsPush = z.infer<typeof credentialsSchema>;
export type Run = z.infer<typeof runSchema>;
/** Frames an agent sends. */
export type AgentMessage = z.infer<typeof agentMessageSchema>;
/** Frames a coordinator sends. */
export type CoordinatorMessage = z.infer<typeof coordinatorMessageSchema>;

function decodeFrame<T>(schema: z.ZodMiniType<T>, data: unknown, from: string): T {
  const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : undefined;
  if (text === undefined) {
    throw new CredfwdError('PROTOCOL_VIOLATION', `frame from ${from} is not text`, 'peers must send JSON text frames');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CredfwdError('PROTOCOL_VIOLATION', `frame from ${from} is not valid JSON`, 'peers must send JSON text frames');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'frame';
    throw new CredfwdError(
      'PROTOCOL_VIOLATION',
      `frame from ${from} has the wrong shape at ${where}: ${issue?.message ?? 'invalid'}`,
      `expected one of the protocol v${PROTOCOL_VERSION} messages`,
    );
  }
  return parsed.data;
}

/** Parses and schema-checks a frame received by the coordinator. */
export function decodeAgentMessage(data: unknown): AgentMessage {
  return decodeFrame(agentMessageSchema, data, 'agent');
}

/** Parses and schema-checks a frame received by an agent. */
export function decodeCoordinatorMessage(data: unknown): CoordinatorMessage {
  return decodeFrame(coordinatorMessageSchema, data, 'coordinator');
}

/** Serialises a frame; kept in one place so both sides agree on the encoding. */
export function encodeMessage(message: AgentMessage | CoordinatorMessage): string {
  return JSON.stringify(message);
}
