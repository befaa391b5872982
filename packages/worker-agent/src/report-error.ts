import { isCredfwdError, type ErrorCode } from '@credfwd/shared';

/** Codes that mean the user invoked the agent wrongly: exit status 2. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['USAGE', 'JOIN_STRING_INVALID', 'JOIN_FILE_INSECURE']);

/**
 * Prints `error[CODE]: message` and `hint: …` and returns the exit status
 * (2 for usage errors, 1 otherwise). A stack trace only with `debug`.
 */
export function reportError(err: unknown, debug: boolean, write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): number {
  if (isCredfwdError(err)) {
    write(`error[${err.code}]: ${err.message}`);
    write(`hint: ${err.hint}`);
  } else {
    write(`error[INTERNAL]: ${err instanceof Error ? err.message : String(err)}`);
    write('hint: rerun with --debug and report it');
  }
  if (debug && err instanceof Error && err.stack) write(err.stack);
  return isCredfwdError(err) && USAGE_CODES.has(err.code) ? 2 : 1;
}
