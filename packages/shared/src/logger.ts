import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Field names whose values are secrets wherever they appear. Redaction is a
 * second line of defence: code must not log secrets in the first place.
 */
const SECRET_FIELDS = ['token', 'joinString', 'join', 'secretAccessKey', 'sessionToken', 'credentials', 'authorization', 'mac', 'jwe'];
const REDACT_PATHS = SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]);

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where lines go; stderr by default so stdout stays the program's output. */
  destination?: NodeJS.WritableStream | number;
}

/** A pino logger with credfwd's redaction, writing JSON lines to stderr. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.CREDFWD_LOG_LEVEL ?? 'info';
  const destination = options.destination ?? 2;
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino({ name: options.name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
}
