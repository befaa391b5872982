import { createRequire } from 'node:module';
import { CredfwdError } from '@credfwd/shared';

/** What a backend starts on a worker: Node running the agent's entry file. */
export interface AgentProgram {
  /** The agent's entry file: the one-file bundle. */
  file: string;
  /** Node options before the file. */
  nodeArgs: string[];
}

/**
 * Node options every agent is started with. `--use-openssl-ca`: Node releases
 * since late 2025 (nodejs/node#59856; 22.23 here) parse the bundled root
 * certificates and NODE_EXTRA_CA_CERTS on a thread of their own as soon as
 * `node:tls` loads: about a fifth of an agent's start-up instructions, and
 * memory it keeps, for certificates an agent never asks for (it trusts only
 * the pinned certificate, with an empty CA list). With the flag, Node leaves
 * certificate authorities to OpenSSL, which loads them only for a context that
 * asks. Workloads do not inherit Node options.
 */
const AGENT_NODE_ARGS: readonly string[] = ['--use-openssl-ca'];

/**
 * The agent this installation ships: the one-file bundle that `pnpm build`
 * writes, which runs on Node 20 and later with nothing else installed. The
 * coordinator never imports agent code (they meet only in shared's
 * protocol); it only needs the file to start or copy.
 */
export function defaultAgentProgram(): AgentProgram {
  return { file: agentBundlePath(), nodeArgs: [...AGENT_NODE_ARGS] };
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
