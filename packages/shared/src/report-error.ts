import { isCredfwdError, errorMessage, type ErrorCode } from './errors.ts';

export interface ReportOptions {
  /** Print the stack trace too (`--debug`). */
  debug: boolean;
  /** Codes that mean the command was invoked wrongly: exit status 2. */
  usageCodes: ReadonlySet<ErrorCode>;
  write?: (line: string) => void;
}

/**
 * How both CLIs end on an error: `error[CODE]: message` and `hint: …` on
 * stderr, and the exit status (2 for usage errors, 1 otherwise). A stack
 * trace only with `debug`: users get what to do, not where it broke.
 */
export function reportError(err: unknown, { debug, usageCodes, write = (line) => process.stderr.write(`${line}\n`) }: ReportOptions): number {
  if (isCredfwdError(err)) {
    write(`error[${err.code}]: ${err.message}`);
    write(`hint: ${err.hint}`);
  } else {
    write(`error[INTERNAL]: internal error: ${errorMessage(err)}`);
    write('hint: rerun with --debug and report it');
  }
  if (debug && err instanceof Error && err.stack) write(err.stack);
  return isCredfwdError(err) && usageCodes.has(err.code) ? 2 : 1;
}
