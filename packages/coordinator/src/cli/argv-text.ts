import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { usage } from './cli-errors.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * Refuses a command line whose arguments are not UTF-8 text. Node decodes
 * argv lossily (bad bytes become U+FFFD) and credfwd carries `--env` values
 * and the workload's arguments as JSON text, so a mangled value would run as
 * if it were what was typed. Only /proc/self/cmdline still holds the bytes:
 * elsewhere argv is taken as it is.
 */
export function assertArgvIsText(args: readonly string[]): void {
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return;
  }
  const parts = splitNul(cmdline);
  // Node's own options and the script come first; the user's arguments are the last ones.
  if (parts.length < args.length) return;
  const raw = parts.slice(parts.length - args.length);
  const index = raw.findIndex((part) => !isUtf8(part));
  if (index < 0) return;
  // The name of NAME=VALUE helps find it; the value may be a secret and is never echoed.
  const name = ENV_NAME.exec(args[index] ?? '')?.[0];
  throw usage(
    `argument ${index + 1} of the command line${name ? ` (${name}…)` : ''} is not UTF-8 text`,
    'environment values and command arguments are carried as text: pass UTF-8, or base64-encode binary data and decode it in the workload',
  );
}

function splitNul(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let end = bytes.indexOf(0); end >= 0; end = bytes.indexOf(0, start)) {
    parts.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return parts;
}
