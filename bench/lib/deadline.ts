/** Thrown when a benchmark stage outlives its deadline. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/**
 * Races `work` against a deadline, so that no stage can hang the run. The
 * work itself is not cancelled: callers kill the processes it waits on.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it returns true; pair with {@link withDeadline}. */
export async function until(check: () => boolean | Promise<boolean>, everyMs = 250): Promise<void> {
  while (!(await check())) await sleep(everyMs);
}
