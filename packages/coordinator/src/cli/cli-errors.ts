import { CredfwdError, isCredfwdError, type ErrorCode } from '@credfwd/shared';

/** Codes that mean the user asked for something malformed: exit status 2. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'USAGE', 'CONFIG_INVALID', 'ENV_NAME_INVALID', 'ENV_CONFLICT', 'ENV_FILE_INVALID', 'ENV_TOO_LARGE', 'JOIN_STRING_INVALID',
]);

/** A usage error: the user asked for something malformed (exit status 2). */
export function usage(message: string, hint: string): CredfwdError {
  return new CredfwdError('USAGE', message, hint);
}

/** Prints `error[CODE]: message` and a hint, and returns the exit status; stacks only with --debug. */
export function reportError(err: unknown, debug: boolean, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): number {
  const error = isCredfwdError(err)
    ? err
    : new CredfwdError('INTERNAL', 'internal error: ' + (err instanceof Error ? err.message : String(err)), 'rerun with --debug and report it');
  write(`error[${error.code}]: ${error.message}`);
  write(`hint: ${error.hint}`);
  if (debug && err instanceof Error && err.stack) write(err.stack);
  if (!isCredfwdError(err)) return 1;
  return USAGE_CODES.has(error.code) ? 2 : 1;
}
