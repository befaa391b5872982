/**
 * Runs `work(0)` … `work(count - 1)` with at most `concurrency` in flight,
 * each lane starting its next item as soon as its last one settles.
 */
export async function forEachLimited(count: number, concurrency: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
