import { readFile } from 'node:fs/promises';
import { CredfwdError, type Env } from '@credfwd/shared';

/**
 * Reads the join string from `--join-file` or CREDFWD_JOIN, and removes
 * CREDFWD_JOIN from `env` either way, so no task the agent starts inherits it.
 */
export async function takeJoinString(joinFile: string | undefined, env: Env): Promise<string> {
  const fromEnv = env.CREDFWD_JOIN;
  delete env.CREDFWD_JOIN;
  if (joinFile !== undefined) {
    try {
      return (await readFile(joinFile, 'utf8')).trim();
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new CredfwdError('USAGE', `cannot read the join file ${joinFile}: ${reason}`, 'pass a file that holds the join string from `credfwd launch`', { cause });
    }
  }
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  throw new CredfwdError('USAGE', 'no join string given', 'set CREDFWD_JOIN or pass --join-file FILE; never put the join string on the command line');
}
