import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CredfwdError } from '@credfwd/shared';
import { agentBundlePath } from './agent-program.ts';

/** The name `credfwd agent-bundle` writes when given no --out. */
export const AGENT_BUNDLE_FILE_NAME = 'credfwd-agent.mjs';

/** The copy {@link writeAgentBundle} made. */
export interface WrittenAgentBundle {
  /** Absolute path of the file written. */
  path: string;
  bytes: number;
  /** Hex SHA-256 of the file, to compare with a copy on a worker. */
  sha256: string;
}

/**
 * Writes the one-file worker agent to `out` (mode 0644: it holds no secret),
 * replacing a file there in one step, so a reader never sees half a bundle.
 * Runs on a worker as `node FILE join`, with the join string in CREDFWD_JOIN.
 */
export async function writeAgentBundle(out: string): Promise<WrittenAgentBundle> {
  const source = agentBundlePath();
  const path = resolve(out);
  const bundle = await readFile(source);
  if (await isDirectory(path)) {
    throw new CredfwdError('OUTPUT_UNWRITABLE', `${path} is a directory`, `pass a file path, for example --out ${join(out, AGENT_BUNDLE_FILE_NAME)}`);
  }
  // Beside the target, so the rename stays on one file system.
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, bundle, { flag: 'wx', mode: 0o644 });
    // The mode given at creation is narrowed by the umask.
    await chmod(temporary, 0o644);
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true });
    const reason = (cause as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new CredfwdError('OUTPUT_UNWRITABLE', `cannot write the agent bundle to ${path}: ${reason}`, 'pass --out with a path in an existing directory you may write to', { cause });
  }
  return { path, bytes: bundle.length, sha256: createHash('sha256').update(bundle).digest('hex') };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    // Missing or unreadable: the write says which, with its own error.
    return false;
  }
}
