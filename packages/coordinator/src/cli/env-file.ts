import { CredfwdError, MAX_ENVIRON_BYTES } from '@credfwd/shared';
import { readAtMost } from './bounded-read.ts';

/**
 * Most bytes `--env-file` reads: a full environ ({@link MAX_ENVIRON_BYTES})
 * with room for comments, `export` and quotes. Anything larger (or endless,
 * like /dev/zero) is refused without being read whole.
 */
export const MAX_ENV_FILE_BYTES = 4 * MAX_ENVIRON_BYTES;

const LINE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const QUOTES = new Set(['"', "'", '`']);
const DOUBLE_QUOTED_ESCAPES: Record<string, string> = { n: '\n', r: '\r', '"': '"', '\\': '\\' };

function invalid(file: string, lineNumber: number, what: string, hint: string): CredfwdError {
  return new CredfwdError('ENV_FILE_INVALID', `${file} line ${lineNumber}: ${what}`, hint);
}

/**
 * The value part of one line, as dotenv reads it: a quoted value keeps `#`
 * and may be followed by a comment; an unquoted value ends at the first `#`
 * and is trimmed (dotenv since v15: "Comments begin where a # exists").
 */
function valueOf(raw: string, lineNumber: number, file: string): string {
  const quote = raw[0];
  if (quote === undefined || !QUOTES.has(quote)) return raw.split('#', 1)[0]!.trim();
  // As dotenv's LINE pattern: a backslash-escaped quote does not close the value.
  let end = 1;
  while (end < raw.length && raw[end] !== quote) end += raw[end] === '\\' ? 2 : 1;
  if (end >= raw.length) {
    throw invalid(file, lineNumber, `unterminated ${quote} quote`, 'close the quote on the same line, or drop the quotes around the value');
  }
  if (!/^\s*(?:#.*)?$/.test(raw.slice(end + 1))) {
    throw invalid(file, lineNumber, `text after the closing ${quote} quote`, 'put the whole value inside the quotes; a comment after it starts with #');
  }
  const inner = raw.slice(1, end);
  return quote === '"' ? inner.replace(/\\([nr"\\])/g, (_, c: string) => DOUBLE_QUOTED_ESCAPES[c]!) : inner;
}

/**
 * Parses a dotenv-style file (`NAME=value`, `export NAME=value`, `#`
 * comments, inline `# comments` after unquoted values, values in `"`, `'` or
 * `` ` ``). A bad line is named by number; its content is never echoed, since
 * values may be secrets.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const environ: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = LINE.exec(trimmed);
    if (!match?.[1]) {
      throw invalid(file, index + 1, 'is not NAME=value', 'names match [A-Za-z_][A-Za-z0-9_]*; comments start with #');
    }
    environ[match[1]] = valueOf(match[2] ?? '', index + 1, file);
  });
  return environ;
}

/** The file as text, or ENV_FILE_INVALID naming the first line that is not UTF-8: environment values cannot carry other bytes. */
function decodeUtf8(bytes: Buffer, file: string): string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(bytes);
  } catch {
    let start = 0;
    for (let lineNumber = 1; ; lineNumber++) {
      const end = bytes.indexOf(0x0a, start);
      const line = bytes.subarray(start, end === -1 ? bytes.length : end);
      try {
        decoder.decode(line);
      } catch {
        throw invalid(file, lineNumber, 'is not UTF-8 text', 'environment values are text: save the file as UTF-8, or base64-encode binary values');
      }
      if (end === -1) throw invalid(file, lineNumber, 'ends inside a UTF-8 character', 'save the file as UTF-8');
      start = end + 1;
    }
  }
}

/** Reads and parses an env file of at most {@link MAX_ENV_FILE_BYTES}, turning I/O failures into a clear error. */
export function readEnvFile(file: string): Record<string, string> {
  let bytes: Buffer;
  try {
    bytes = readAtMost(file, MAX_ENV_FILE_BYTES);
  } catch (cause) {
    const reason = cause instanceof Error && 'code' in cause ? String(cause.code) : 'unreadable';
    throw new CredfwdError('ENV_FILE_INVALID', `cannot read env file ${file} (${reason})`, 'check the path given to --env-file', { cause });
  }
  if (bytes.length > MAX_ENV_FILE_BYTES) {
    throw new CredfwdError(
      'ENV_TOO_LARGE',
      `env file ${file} is larger than ${MAX_ENV_FILE_BYTES / 1024} KiB`,
      `env files may hold at most ${MAX_ENV_FILE_BYTES / 1024} KiB, and the environ at most ${MAX_ENVIRON_BYTES / 1024} KiB of names and values (JSON-encoded); pass large data as a file or object store location instead`,
    );
  }
  return parseEnvFile(decodeUtf8(bytes, file), file);
}
