import { CredfwdError } from '@credfwd/shared';
import { readAtMost } from './bounded-read.ts';

/** STS refuses packed session policies much over 2 KiB; a file far larger is not a session policy. */
const MAX_POLICY_BYTES = 64 * 1024;

/** `--session-policy F`: the file's text; its form is checked with the cluster's other options. */
export function readSessionPolicy(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readAtMost(file, MAX_POLICY_BYTES);
  } catch (cause) {
    throw new CredfwdError('CONFIG_INVALID', `cannot read --session-policy ${JSON.stringify(file.slice(0, 200))}`, 'check the file exists and is readable by this user', { cause });
  }
  if (bytes.length > MAX_POLICY_BYTES) throw new CredfwdError('CONFIG_INVALID', `--session-policy ${JSON.stringify(file.slice(0, 200))} is over ${MAX_POLICY_BYTES} bytes`, 'a session policy is an IAM policy document of about 2 KiB at most');
  return bytes.toString('utf8');
}
