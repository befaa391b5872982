/** The parts of a V8 CPU profile (`.cpuprofile`, as `--cpu-prof` writes it) that self time needs. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  startTime: number;
  endTime: number;
}

/** A function and the share of busy samples spent in its own code. */
export interface HotFunction {
  name: string;
  /** Package-relative file and line, or '' for V8's own entries such as (garbage collector). */
  where: string;
  /** Percent of the samples in which the process was not idle. */
  selfPercent: number;
}

/** Shortens a file URL to what names it: the package and its path inside, or the repo path. */
function shortLocation(url: string, line: number): string {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  const inModules = path.lastIndexOf('/node_modules/');
  // The last such folder: the checkout itself may sit in a folder called bench.
  const inRepo = Math.max(...['/packages/', '/bench/', '/tests/'].map((folder) => path.lastIndexOf(folder)));
  const short = inModules >= 0 ? path.slice(inModules + '/node_modules/'.length) : inRepo >= 0 ? path.slice(inRepo + 1) : path;
  return `${short}:${line + 1}`;
}

/**
 * The functions with the most self time, aggregated over every call site
 * (a function appears once per distinct stack in the profile tree). Idle
 * samples are left out: the profile covers waiting for the refresh too.
 */
export function topFunctions(profile: CpuProfile, count: number): HotFunction[] {
  const totals = new Map<string, { name: string; where: string; hits: number }>();
  let all = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || node.callFrame.functionName === '(idle)') continue;
    all += hits;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = shortLocation(url, lineNumber);
    const key = `${functionName}@${where}`;
    const total = totals.get(key) ?? { name: functionName || '(anonymous)', where, hits: 0 };
    total.hits += hits;
    totals.set(key, total);
  }
  return [...totals.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, count)
    .map((t) => ({ name: t.name, where: t.where, selfPercent: all === 0 ? 0 : (100 * t.hits) / all }));
}
