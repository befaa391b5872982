import { CredfwdError, isCredfwdError, parseEndpointListen, type DeliveryMode } from '@credfwd/shared';
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
  /**
   * With endpoint delivery: every agent also serves its credentials endpoint
   * at this address (`ADDR[:PORT]`, one of 169.254.170.2, 169.254.170.23 or
   * [fd00:ec2::23]), for containers on its worker (`credfwd-agent join --endpoint-listen`).
   */
  endpointListen?: string;
  /** With imds delivery: every agent also answers instance metadata requests without a session token. */
  imdsV1?: boolean;
  /** Where workers start, for a backend of your own; excludes the options above. */
  backend?: LaunchBackend;
}

const MAX_LOCAL_WORKERS = 1000;

/**
 * The backend the options ask for, for a cluster of `delivery`; a coded
 * error, before anything starts, when they contradict each other.
 */
export function launchBackendFor(options: WorkerPlacementOptions, delivery: DeliveryMode): LaunchBackend {
  const { hosts, workers, backend } = options;
  // An agent flag for another delivery would be ignored by every agent: success in appearance only.
  if (options.endpointListen !== undefined && delivery !== 'endpoint') throw new CredfwdError('CONFIG_INVALID', `endpointListen applies to endpoint delivery, not ${delivery}`, "add delivery: 'endpoint', or drop endpointListen");
  if (options.imdsV1 === true && delivery !== 'imds') throw new CredfwdError('CONFIG_INVALID', `imdsV1 applies to imds delivery, not ${delivery}`, "add delivery: 'imds', or drop imdsV1");
  if (backend !== undefined) {
    if (hosts !== undefined || workers !== undefined) throw new CredfwdError('CONFIG_INVALID', 'a backend places the workers itself: give it, or workers, or hosts', 'drop workers and hosts when passing a backend');
    if (options.endpointListen !== undefined || options.imdsV1 !== undefined) throw new CredfwdError('CONFIG_INVALID', 'a backend starts its agents itself: endpointListen and imdsV1 apply to local and SSH workers', 'pass the agent flags from your backend, or drop them');
    return backend;
  }
  const agentArgs = agentArgsFrom(options);
  if (hosts === undefined) {
    if (options.workersPerHost !== undefined || options.ssh !== undefined || options.allowPartial !== undefined || options.giveUpAfterSeconds !== undefined) {
      throw new CredfwdError('CONFIG_INVALID', 'workers per host, SSH settings, partial launches and the give-up time apply to SSH hosts only', 'add hosts (--hosts HOST,…), or drop them');
    }
    const count = workers ?? 1;
    if (!Number.isInteger(count) || count < 0 || count > MAX_LOCAL_WORKERS) {
      throw new CredfwdError('CONFIG_INVALID', `workers must be a whole number from 0 to ${MAX_LOCAL_WORKERS}, not ${count}`, 'local workers are processes on this machine; put more on other machines with hosts (--hosts) or the join command');
    }
    return new LocalBackend({ count, agentArgs });
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
    agentArgs,
  });
}

/** The `credfwd-agent join` flags every agent gets: addresses and switches, never a secret, so argv is fine. */
function agentArgsFrom({ endpointListen, imdsV1 }: WorkerPlacementOptions): string[] {
  const args: string[] = [];
  if (endpointListen !== undefined) {
    try {
      parseEndpointListen(endpointListen, 'endpointListen');
    } catch (err) {
      if (!isCredfwdError(err)) throw err;
      throw new CredfwdError('CONFIG_INVALID', err.message, err.hint);
    }
    args.push('--endpoint-listen', endpointListen);
  }
  if (imdsV1) args.push('--imds-v1');
  return args;
}
