import { CredfwdError, errorMessage, type ErrorCode } from '@credfwd/shared';

interface KnownStsError {
  code: ErrorCode;
  hint: string;
  /** Whether the same call may succeed later without anyone changing anything. */
  retryable: boolean;
}

const DENIED: KnownStsError = { code: 'STS_ACCESS_DENIED', hint: 'check that the launcher identity may call this STS action (and, for a role, that its trust policy allows the launcher)', retryable: false };
const EXPIRED: KnownStsError = { code: 'STS_EXPIRED_TOKEN', hint: 'the launcher credentials have expired: log in again (aws sso login, aws-vault, …)', retryable: false };
const THROTTLED: KnownStsError = { code: 'STS_THROTTLED', hint: 'STS is rate limiting this account: try again shortly (a running cluster retries its refreshes with backoff)', retryable: true };

const BY_NAME: Record<string, KnownStsError> = {
  AccessDenied: DENIED,
  AccessDeniedException: DENIED,
  ExpiredToken: EXPIRED,
  ExpiredTokenException: EXPIRED,
  InvalidClientTokenId: { code: 'STS_INVALID_TOKEN', hint: 'the launcher access key is not valid: check AWS_ACCESS_KEY_ID or your profile', retryable: false },
  SignatureDoesNotMatch: { code: 'STS_INVALID_TOKEN', hint: 'the launcher secret key does not match its access key', retryable: false },
  RegionDisabledException: { code: 'STS_REGION_DISABLED', hint: 'activate STS in this region in IAM account settings, or pass another --region', retryable: false },
  Throttling: THROTTLED,
  ThrottlingException: THROTTLED,
};

/** The HTTP status of an SDK service error, or undefined when no answer came (network, timeout). */
function httpStatus(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Maps an error from the STS client to a CredfwdError; the STS message is
 * kept (it holds no secret). Throttling, 5xx answers and no answer at all are
 * retryable; every other refusal needs a person.
 */
export function mapStsError(err: unknown, action: string): CredfwdError {
  const name = err instanceof Error ? err.name : 'Error';
  const detail = errorMessage(err);
  const message = `STS ${action} failed: ${name}: ${detail}`;
  const known = BY_NAME[name];
  if (known) return new CredfwdError(known.code, message, known.hint, { cause: err, retryable: known.retryable });
  const status = httpStatus(err);
  const retryable = status === undefined || status >= 500;
  const hint = retryable
    ? 'STS could not be reached or failed: check network access to STS (AWS_ENDPOINT_URL_STS, proxies); a running cluster retries its refreshes with backoff'
    : 'check the launcher credentials and the STS request';
  return new CredfwdError('STS_FAILED', message, hint, { cause: err, retryable });
}

/** STS refuses GetSessionToken for temporary credentials with this AccessDenied message. */
export function isSessionCredentialsRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'AccessDenied' && /with session credentials/i.test(err.message);
}
