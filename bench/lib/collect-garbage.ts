import { sleep } from './deadline.ts';

/**
 * Collects all the garbage V8 can before RSS is read (needs --expose-gc):
 * twice, with a pause, since the first pass queues finalisers that the
 * second collects. The last-resort flavour also gives back the young
 * generation's pages, as V8 does on its own once a process idles or memory
 * runs short: a plain gc() keeps them, and a burst of joins leaves up to
 * 32 MiB of them in use, which is not a cost of the connections held.
 */
export async function collectAllGarbage(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    globalThis.gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    await sleep(200);
  }
}
