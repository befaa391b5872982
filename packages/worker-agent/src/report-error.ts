import { reportError, type ErrorCode } from '@credfwd/shared';

/** Codes that mean the user invoked the agent wrongly: exit status 2. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['USAGE', 'JOIN_STRING_INVALID', 'JOIN_FILE_INSECURE']);

/** Prints `error[CODE]: message` and a hint for `credfwd-agent`, and returns its exit status. */
export function reportAgentError(err: unknown, debug: boolean): number {
  return reportError(err, { debug, usageCodes: USAGE_CODES });
}
