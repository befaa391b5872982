import { createRequire } from 'node:module';
import { CredfwdError } from '@credfwd/shared';

/** What a backend starts on a worker: Node running the agent's entry file. */
export interface AgentProgram {
  /** The agent's entry file: the one-file bundle. */
  file: string;
  /** Node options before the file; empty for the bundle. */
  nodeArgs: string[];
}

/**
 * The agent this installation ships: the one-file bundle that `pnpm build`
 * writes, which runs on Node 20 and later with nothing else installed. The
 * coordinator never imports agent code (they meet only in shared's
 * protocol); it only needs the file to start or copy.
 */
export function defaultAgentProgram(): AgentProgram {
  return { file: agentBundlePath(), nodeArgs: [] };
}

/** Path of the built one-file agent; AGENT_BUNDLE_MISSING when this installation was never built. */
export function agentBundlePath(): string {
  try {
    return createRequire(import.meta.url).resolve('@credfwd/worker-agent/bundle');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw cause;
    throw new CredfwdError(
      'AGENT_BUNDLE_MISSING',
      'the one-file worker agent has not been built in this installation',
      'run pnpm build in the credfwd checkout (pnpm install runs it, unless scripts were skipped)',
      { cause },
    );
  }
}
