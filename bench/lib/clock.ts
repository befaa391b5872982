/**
 * Milliseconds on CLOCK_MONOTONIC (`process.hrtime`). On Linux that clock is
 * one for the whole machine, so readings taken in different processes
 * compare directly: the benchmark's stub STS notes a mint in one process and
 * each replica notes its acks in another. `performance.now()` would not do:
 * it counts from each process's own start.
 */
export function machineMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
