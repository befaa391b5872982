import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EndpointInfo } from '@credfwd/shared';

/**
 * The command that prints this agent's credentials: the same Node and agent
 * script as the running agent, so the profile works whatever is on the
 * workload's PATH.
 */
export function selfCommand(): string[] {
  return [process.execPath, process.argv[1] ?? ''];
}

/**
 * Writes, beside the endpoint's token file (in its private 0700 directory,
 * removed with it), a config file (0600) whose default profile runs
 * `credfwd-agent credentials` against that endpoint, for tools that read
 * credentials only from a profile. Neither the URL nor the token file path
 * is a secret: the token stays in its file. Returns the file's path.
 */
export async function writeProfileFile(endpoint: EndpointInfo, command: string[] = selfCommand()): Promise<string> {
  const file = join(dirname(endpoint.tokenFile), 'config');
  const argv = [...command, 'credentials', '--url', endpoint.url, '--token-file', endpoint.tokenFile];
  // Quoted for both readers: botocore splits the line as a POSIX shell would, the JS SDK hands it to /bin/sh.
  const line = argv.map(shellQuote).join(' ');
  await writeFile(file, `[default]\ncredential_process = ${line}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
