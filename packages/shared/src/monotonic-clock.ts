/**
 * Milliseconds on a clock that wall-clock changes do not move, as
 * `performance.now()` gives, without its cost to an agent: the first use of
 * `performance` loads Node's perf_hooks, eight modules an idle agent would
 * keep for nothing (bench/analysis.md, agent idle RSS).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
