/** Every failure credfwd reports has one of these stable codes. */
export type ErrorCode =
  | 'LAUNCHER_NO_CREDENTIALS'
  | 'STS_ACCESS_DENIED'
  | 'STS_EXPIRED_TOKEN'
  | 'STS_INVALID_TOKEN'
  | 'STS_THROTTLED'
  | 'STS_REGION_DISABLED'
  | 'STS_FAILED'
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'ENV_NAME_INVALID'
  | 'ENV_CONFLICT'
  | 'ENV_FILE_INVALID'
  | 'ENV_TOO_LARGE'
  | 'JOIN_STRING_INVALID'
  | 'JOIN_FILE_INSECURE'
  | 'AGENT_AUTH_FAILED'
  | 'AGENT_PIN_MISMATCH'
  | 'AGENT_UNREACHABLE'
  | 'NO_CREDENTIALS'
  | 'AGENT_START_FAILED'
  | 'AGENT_ID_IN_USE'
  | 'AGENT_BUNDLE_MISSING'
  | 'OUTPUT_UNWRITABLE'
  | 'PROTOCOL_MISMATCH'
  | 'PROTOCOL_VIOLATION'
  | 'CLUSTER_NOT_FOUND'
  | 'CLUSTER_REVOKED'
  | 'CLUSTER_CLOSED'
  | 'REDIS_UNAVAILABLE'
  | 'ADMIN_AUTH_FAILED'
  | 'COORDINATOR_PIN_MISMATCH'
  | 'COORDINATOR_UNREACHABLE'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_FOUND'
  | 'REQUEST_TOO_LARGE'
  | 'DEMO_PREREQUISITE_MISSING'
  | 'ABORTED'
  | 'INTERNAL'
  | 'SSH_HOST_KEY_UNKNOWN'
  | 'SSH_AUTH_FAILED'
  | 'SSH_UNREACHABLE'
  | 'SSH_FAILED'
  | 'SSH_CONNECTION_LOST'
  | 'REMOTE_NODE_MISSING'
  | 'REMOTE_UPLOAD_FAILED'
  | 'POLICY_DENIED'
  | 'POLICY_INVALID'
  | 'SCOPE_UNSUPPORTED'
  | 'REVOKE_FAILED';

/**
 * The one error type credfwd throws on purpose. `message` says what went
 * wrong, `hint` what the user can do about it; neither ever holds a secret.
 * `retryable` says whether trying the same thing again later may succeed
 * (throttling, an outage) or needs a person first (denied access, an expired
 * login): retry loops read it here, never from the message.
 */
export class CredfwdError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, hint: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CredfwdError';
    this.code = code;
    this.hint = hint;
    this.retryable = options?.retryable ?? false;
  }
}

/** True for errors credfwd raised itself (as opposed to bugs and library failures). */
export function isCredfwdError(err: unknown): err is CredfwdError {
  return err instanceof CredfwdError;
}

/** What anything thrown says, for an error or log line that wraps it. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
