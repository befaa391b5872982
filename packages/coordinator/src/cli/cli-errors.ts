import { CredfwdError, reportError, type ErrorCode } from '@credfwd/shared';

/** Codes that mean the user asked for something malformed: exit status 2. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'USAGE', 'CONFIG_INVALID', 'ENV_NAME_INVALID', 'ENV_CONFLICT', 'ENV_FILE_INVALID', 'ENV_TOO_LARGE', 'JOIN_STRING_INVALID',
]);

/** A usage error: the user asked for something malformed (exit status 2). */
export function usage(message: string, hint: string): CredfwdError {
  return new CredfwdError('USAGE', message, hint);
}

/** Prints `error[CODE]: message` and a hint for `credfwd`, and returns its exit status. */
export function reportCliError(err: unknown, debug: boolean): number {
  return reportError(err, { debug, usageCodes: USAGE_CODES });
}
