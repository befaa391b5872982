import { errorMessage, isCredfwdError, type ErrorCode } from '@credfwd/shared';

/** A refresh failure as the cluster shows it. */
export interface RefreshError {
  code: ErrorCode;
  message: string;
  hint: string;
  /** False when retrying cannot help until a person acts (access denied, an expired login). */
  retryable: boolean;
  at: Date;
}

/** How a failed refresh is shown and retried, embedded or distributed alike. */
export function refreshErrorOf(err: unknown, at: Date): RefreshError {
  const known = isCredfwdError(err) ? err : undefined;
  return {
    code: known?.code ?? 'STS_FAILED',
    message: errorMessage(err),
    hint: known?.hint ?? 'check network access to STS',
    // An error credfwd did not classify may be passing; retrying keeps the cluster alive.
    retryable: known?.retryable ?? true,
    at,
  };
}

/**
 * Where a cluster's refresh loop stands: `scheduled` on plan, `backing-off`
 * after retryable failures, `needs-attention` after a failure that retrying
 * cannot fix, when no further refresh is planned until a refresh is asked for.
 */
export type RefreshState = 'scheduled' | 'backing-off' | 'needs-attention';

/** Where a cluster's refresh loop stands. */
export interface RefreshStatus {
  state: RefreshState;
  expiresAt: Date;
  lastRefreshAt: Date;
  nextRefreshAt: Date | undefined;
  consecutiveFailures: number;
  lastError: RefreshError | undefined;
}

/** The status once new credentials are in use: no failure, and the next refresh planned (unless none is). */
export function refreshedStatus(expiresAt: Date, at: Date, nextRefreshAt: Date | undefined): RefreshStatus {
  return { state: 'scheduled', expiresAt, lastRefreshAt: at, nextRefreshAt, consecutiveFailures: 0, lastError: undefined };
}

/**
 * The status after a failed refresh: the credentials in use stay, and the
 * next attempt is at `nextRefreshAt`, or waits for a person when the error
 * says retrying cannot help.
 */
export function failedRefreshStatus(previous: RefreshStatus, error: RefreshError, nextRefreshAt: Date | undefined): RefreshStatus {
  return {
    ...previous,
    state: error.retryable ? 'backing-off' : 'needs-attention',
    nextRefreshAt,
    consecutiveFailures: previous.consecutiveFailures + 1,
    lastError: error,
  };
}

/** A {@link RefreshStatus} as JSON: what the service stores and its admin API shows, `null` where a field is absent. */
export interface RefreshStatusJson {
  state: RefreshState;
  expiresAt: string;
  lastRefreshAt: string;
  nextRefreshAt: string | null;
  consecutiveFailures: number;
  lastError: (Omit<RefreshError, 'at'> & { at: string }) | null;
}

/** Encodes a status for JSON; see {@link RefreshStatusJson}. */
export function refreshStatusToJson(status: RefreshStatus): RefreshStatusJson {
  return {
    state: status.state,
    expiresAt: status.expiresAt.toISOString(),
    lastRefreshAt: status.lastRefreshAt.toISOString(),
    nextRefreshAt: status.nextRefreshAt?.toISOString() ?? null,
    consecutiveFailures: status.consecutiveFailures,
    lastError: status.lastError ? { ...status.lastError, at: status.lastError.at.toISOString() } : null,
  };
}

/** Decodes what {@link refreshStatusToJson} encoded. */
export function refreshStatusFromJson(json: RefreshStatusJson): RefreshStatus {
  return {
    state: json.state,
    expiresAt: new Date(json.expiresAt),
    lastRefreshAt: new Date(json.lastRefreshAt),
    nextRefreshAt: json.nextRefreshAt === null ? undefined : new Date(json.nextRefreshAt),
    consecutiveFailures: json.consecutiveFailures,
    lastError: json.lastError ? { ...json.lastError, at: new Date(json.lastError.at) } : undefined,
  };
}
