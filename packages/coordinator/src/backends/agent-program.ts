import { createRequire } from 'node:module';

/** What a backend starts on a worker: Node running the agent's entry file. */
export interface AgentProgram {
  /** The agent's entry file: the one-file bundle, or the package's bin in development. */
  file: string;
  /** Node options before the file; empty for the bundle. */
  nodeArgs: string[];
}

/**
 * The agent this installation ships. The coordinator never imports agent
 * code (they meet only in shared's protocol); it only needs the file to start.
 */
export function defaultAgentProgram(): AgentProgram {
  return { file: createRequire(import.meta.url).resolve('@credfwd/worker-agent/bin'), nodeArgs: [] };
}
