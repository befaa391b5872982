import { CredfwdError } from '@credfwd/shared';
import { defaultAgentProgram } from './agent-program.ts';
import type { LaunchBackend } from './launch-backend.ts';
import { LocalBackend } from './local/index.ts';
import { SshBackend } from './ssh/index.ts';

/** Where a launch places its workers: N local processes, or agents on SSH hosts. */
export interface WorkerPlacementOptions {
  /** Local worker agents to start (0 for agents that join from elsewhere); 1 by default, none with `hosts`. */
  workers?: number;
  /** SSH hosts to start agents on: `[user@]host[:port]` or aliases of the SSH config. */
  hosts?: readonly string[];
  /** Agents per SSH host (default 1). */
  workersPerHost?: number;
  ssh?: {
    /** `ssh -F`. */
    configFile?: string;
    /** `ssh -o` values, e.g. `ProxyJump=bastion`. */
    options?: readonly string[];
  };
  /** With `hosts`: start on the hosts that pass the checks and log the others, instead of failing the launch. */
  allowPartial?: boolean;
  /**
   * With `hosts`: how long a host may stay unreachable (its SSH link re-dialled
   * meanwhile) before it is reported lost and its agent stops itself (default 600).
   */
  giveUpAfterSeconds?: number;
  /** Where workers start, for a backend of your own; excludes the options above. */
  backend?: LaunchBackend;
}

const MAX_LOCAL_WORKERS = 1000;

/** The backend the options ask for; a coded error, before anything starts, when they contradict each other. */
export function launchBackendFor(options: WorkerPlacementOptions): LaunchBackend {
  const { hosts, workers, backend } = options;
  if (backend !== undefined) {
    if (hosts !== undefined || workers !== undefined) throw new CredfwdError('CONFIG_INVALID', 'a backend places the workers itself: give it, or workers, or hosts', 'drop workers and hosts when passing a backend');
    return backend;
  }
  if (hosts === undefined) {
    if (options.workersPerHost !== undefined || options.ssh !== undefined || options.allowPartial !== undefined || options.giveUpAfterSeconds !== undefined) {
      throw new CredfwdError('CONFIG_INVALID', 'workers per host, SSH settings, partial launches and the give-up time apply to SSH hosts only', 'add hosts (--hosts HOST,…), or drop them');
    }
    const count = workers ?? 1;
    if (!Number.isInteger(count) || count < 0 || count > MAX_LOCAL_WORKERS) {
      throw new CredfwdError('CONFIG_INVALID', `workers must be a whole number from 0 to ${MAX_LOCAL_WORKERS}, not ${count}`, 'local workers are processes on this machine; put more on other machines with hosts (--hosts) or the join command');
    }
    return new LocalBackend({ count });
  }
  if (workers !== undefined && workers !== 0) {
    throw new CredfwdError('CONFIG_INVALID', 'workers counts local workers: with hosts, give workersPerHost instead', 'drop --workers and use --workers-per-host N');
  }
  if (hosts.length === 0) throw new CredfwdError('CONFIG_INVALID', 'hosts is empty', 'name at least one SSH host, or leave hosts out for local workers');
  return new SshBackend({
    hosts,
    ...(options.workersPerHost !== undefined ? { workersPerHost: options.workersPerHost } : {}),
    ...(options.ssh ? { ssh: options.ssh } : {}),
    ...(options.allowPartial !== undefined ? { allowPartial: options.allowPartial } : {}),
    ...(options.giveUpAfterSeconds !== undefined ? { giveUpAfterSeconds: options.giveUpAfterSeconds } : {}),
    program: defaultAgentProgram(),
  });
}
