import { CredfwdError } from '@credfwd/shared';

/** The error a launch rejects with when its `signal` aborts it before every worker is ready. */
export function launchAborted(signal: AbortSignal): CredfwdError {
  return new CredfwdError(
    'ABORTED',
    `the launch was interrupted${typeof signal.reason === 'string' ? ` (${signal.reason})` : ''} before every worker was ready`,
    'everything it had started was stopped; launch again when ready',
    { cause: signal.reason },
  );
}

/**
 * Settles as `work` does, or rejects with ABORTED as soon as `signal` aborts;
 * `abandon` then disposes of whatever `work` still yields.
 */
export async function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, abandon: (late: T) => void): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.then(abandon, () => undefined);
    throw launchAborted(signal);
  }
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      work.then(abandon, () => undefined);
      reject(launchAborted(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
