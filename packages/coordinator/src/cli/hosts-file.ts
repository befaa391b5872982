import { CredfwdError } from '@credfwd/shared';
import { readAtMost } from './bounded-read.ts';

/** Most bytes `--hosts-file` reads: thousands of hosts, never a stray device or log file read whole. */
const MAX_HOSTS_FILE_BYTES = 256 * 1024;

/** `--hosts a,b,c`: the hosts, without blanks. */
export function parseHostList(value: string): string[] {
  return value.split(',').map((host) => host.trim()).filter((host) => host !== '');
}

/**
 * `--hosts-file`: one host per line (`[user@]host[:port]` or an SSH config
 * alias), blank lines and `#` comments ignored, as in a Dask or MPI host file.
 */
export function readHostsFile(file: string): string[] {
  let bytes: Buffer;
  try {
    bytes = readAtMost(file, MAX_HOSTS_FILE_BYTES);
  } catch (cause) {
    const reason = cause instanceof Error && 'code' in cause ? String(cause.code) : 'unreadable';
    throw new CredfwdError('CONFIG_INVALID', `cannot read hosts file ${file} (${reason})`, 'check the path given to --hosts-file', { cause });
  }
  if (bytes.length > MAX_HOSTS_FILE_BYTES) {
    throw new CredfwdError('CONFIG_INVALID', `hosts file ${file} is larger than ${MAX_HOSTS_FILE_BYTES / 1024} KiB`, 'list one host per line; is this the right file?');
  }
  const hosts = bytes.toString('utf8').split(/\r?\n/).map((line) => line.split('#', 1)[0]!.trim()).filter((line) => line !== '');
  if (hosts.length === 0) throw new CredfwdError('CONFIG_INVALID', `hosts file ${file} names no host`, 'write one host per line: [user@]host[:port] or an alias of your SSH config');
  return hosts;
}
