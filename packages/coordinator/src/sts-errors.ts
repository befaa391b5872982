import { CredfwdError, type ErrorCode } from '@credfwd/shared';

const BY_NAME: Record<string, { code: ErrorCode; hint: string }> = {
  AccessDenied: { code: 'STS_ACCESS_DENIED', hint: 'check that the launcher identity may call this STS action (and, for a role, that its trust policy allows the launcher)' },
  AccessDeniedException: { code: 'STS_ACCESS_DENIED', hint: 'check that the launcher identity may call this STS action (and, for a role, that its trust policy allows the launcher)' },
  ExpiredToken: { code: 'STS_EXPIRED_TOKEN', hint: 'the launcher credentials have expired: log in again (aws sso login, aws-vault, …)' },
  ExpiredTokenException: { code: 'STS_EXPIRED_TOKEN', hint: 'the launcher credentials have expired: log in again (aws sso login, aws-vault, …)' },
  InvalidClientTokenId: { code: 'STS_INVALID_TOKEN', hint: 'the launcher access key is not valid: check AWS_ACCESS_KEY_ID or your profile' },
  SignatureDoesNotMatch: { code: 'STS_INVALID_TOKEN', hint: 'the launcher secret key does not match its access key' },
  RegionDisabledException: { code: 'STS_REGION_DISABLED', hint: 'activate STS in this region in IAM account settings, or pass another --region' },
  Throttling: { code: 'STS_THROTTLED', hint: 'STS is rate limiting this account; credfwd retries with backoff' },
  ThrottlingException: { code: 'STS_THROTTLED', hint: 'STS is rate limiting this account; credfwd retries with backoff' },
};

/** Maps an error from the STS client to a CredfwdError; the STS message is kept (it holds no secret). */
export function mapStsError(err: unknown, action: string): CredfwdError {
  const name = err instanceof Error ? err.name : 'Error';
  const known = BY_NAME[name];
  const detail = err instanceof Error ? err.message : String(err);
  if (known) return new CredfwdError(known.code, `STS ${action} failed: ${name}: ${detail}`, known.hint, { cause: err });
  return new CredfwdError('STS_FAILED', `STS ${action} failed: ${name}: ${detail}`, 'check network access to STS and the launcher credentials', { cause: err });
}

/** STS refuses GetSessionToken for temporary credentials with this AccessDenied message. */
export function isSessionCredentialsRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'AccessDenied' && /with session credentials/i.test(err.message);
}
