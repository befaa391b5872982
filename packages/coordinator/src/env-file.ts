import { readFileSync } from 'node:fs';
import { CredfwdError } from '@credfwd/shared';

const LINE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

function unquote(raw: string, lineNumber: number, file: string): string {
  const value = raw.trim();
  const quote = value[0];
  if (quote !== '"' && quote !== "'") return value;
  if (value.length < 2 || value.at(-1) !== quote) {
    throw new CredfwdError('ENV_FILE_INVALID', `${file} line ${lineNumber}: unterminated ${quote} quote`, 'close the quote, or drop the quotes around the value');
  }
  const inner = value.slice(1, -1);
  return quote === '"' ? inner.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\') : inner;
}

/**
 * Parses a dotenv-style file (`NAME=value`, `export NAME=value`, `#`
 * comments, quoted values). A bad line is named by number; its content is
 * never echoed, since values may be secrets.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const environ: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const match = LINE.exec(trimmed);
    if (!match?.[1]) {
      throw new CredfwdError('ENV_FILE_INVALID', `${file} line ${index + 1} is not NAME=value`, 'names match [A-Za-z_][A-Za-z0-9_]*; comments start with #');
    }
    environ[match[1]] = unquote(match[2] ?? '', index + 1, file);
  });
  return environ;
}

/** Reads and parses an env file, turning I/O failures into a clear error. */
export function readEnvFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = cause instanceof Error && 'code' in cause ? String(cause.code) : 'unreadable';
    throw new CredfwdError('ENV_FILE_INVALID', `cannot read env file ${file} (${reason})`, 'check the path given to --env-file', { cause });
  }
  return parseEnvFile(text, file);
}
