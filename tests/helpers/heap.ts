import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
// A fresh context sees the flag just set; this process's global was created before it.
const collect = runInNewContext('gc') as () => void;

/** Memory after a full garbage collection, so growth measured between two calls is what is really retained. */
export function settledMemory(): NodeJS.MemoryUsage {
  collect();
  collect();
  return process.memoryUsage();
}

export const MiB = 1024 * 1024;
