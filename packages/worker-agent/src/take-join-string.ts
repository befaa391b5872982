import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CredfwdError, type Env } from '@credfwd/shared';

/** Far above any join string (several addresses, a token and a pin), far below anything worth reading. */
const MAX_JOIN_STRING_BYTES = 16 * 1024;

/** Where {@link takeJoinString} reads the join string from; CREDFWD_JOIN when neither is given. */
export interface JoinStringSource {
  /** `--join-file`: a file only its owner may read or write, like an ssh key. */
  joinFile?: string;
  /** `--stdin`: the first line of this stream, written by the launcher that started the agent. */
  stdin?: Readable;
}

/**
 * Reads the join string from `--join-file`, the first line of stdin or
 * CREDFWD_JOIN, and removes CREDFWD_JOIN from `env` whichever was used, so no
 * task the agent starts inherits it.
 */
export async function takeJoinString(source: JoinStringSource, env: Env): Promise<string> {
  const fromEnv = env.CREDFWD_JOIN;
  delete env.CREDFWD_JOIN;
  if (source.joinFile !== undefined) return readJoinFile(source.joinFile);
  if (source.stdin !== undefined) return readFirstLine(source.stdin);
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  throw new CredfwdError('USAGE', 'no join string given', 'set CREDFWD_JOIN or pass --join-file FILE; never put the join string on the command line');
}

async function readJoinFile(path: string): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw unreadable(path, cause);
  }
  try {
    // Checked on the open file, not the path, so the file read is the file checked.
    const { mode } = await handle.stat();
    if ((mode & 0o077) !== 0) {
      throw new CredfwdError(
        'JOIN_FILE_INSECURE',
        `the join file ${path} may be read or written by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); its join string lets anyone enrol agents and receive the cluster's credentials`,
        `chmod 600 ${path}`,
      );
    }
    const buffer = Buffer.alloc(MAX_JOIN_STRING_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_JOIN_STRING_BYTES) {
      throw new CredfwdError('JOIN_STRING_INVALID', `the join file ${path} is larger than ${MAX_JOIN_STRING_BYTES} bytes`, 'the file must hold only the join string from `credfwd launch`');
    }
    return buffer.subarray(0, bytesRead).toString('utf8').trim();
  } catch (cause) {
    throw cause instanceof CredfwdError ? cause : unreadable(path, cause);
  } finally {
    await handle.close();
  }
}

function unreadable(path: string, cause: unknown): CredfwdError {
  const reason = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
  return new CredfwdError('USAGE', `cannot read the join file ${path}: ${reason}`, 'pass a file that holds the join string from `credfwd launch`', { cause });
}

/**
 * The first line of `input`, leaving the stream paused and open: the rest of
 * it is the launcher lifeline. Bytes after the newline are put back.
 */
function readFirstLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (outcome: { line: string } | { error: CredfwdError }): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if ('line' in outcome) resolve(outcome.line);
      else reject(outcome.error);
    };
    const onData = (chunk: Buffer): void => {
      const newline = chunk.indexOf(0x0a);
      chunks.push(newline === -1 ? chunk : chunk.subarray(0, newline));
      length += newline === -1 ? chunk.length : newline;
      if (length > MAX_JOIN_STRING_BYTES) {
        finish({ error: new CredfwdError('JOIN_STRING_INVALID', `the first line of stdin is longer than ${MAX_JOIN_STRING_BYTES} bytes`, 'write only the join string and a newline to the agent\'s stdin') });
      } else if (newline !== -1) {
        if (newline + 1 < chunk.length) input.unshift(chunk.subarray(newline + 1));
        finish({ line: Buffer.concat(chunks).toString('utf8').trim() });
      }
    };
    const onEnd = (): void => finish({
      error: new CredfwdError('USAGE', 'stdin ended before a join string and a newline arrived', 'with --stdin, write the join string and a newline to the agent\'s stdin and keep it open while the agent should run'),
    });
    const onError = (cause: Error): void => finish({
      error: new CredfwdError('USAGE', `cannot read the join string from stdin: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, 'with --stdin, start the agent with a pipe on its stdin'),
    });
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
  });
}
