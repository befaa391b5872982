import { InvalidArgumentError } from 'commander';
import { parseDuration, parseEndpointListen, onRefreshSchema, type OnRefresh } from '@credfwd/shared';
import type { WorkerPlacementOptions } from '../backends/index.ts';
import { MAX_LEASE_SECONDS, MIN_LEASE_SECONDS, type ClusterOptions, type CredentialsOption } from '../core/index.ts';
import { usage } from './cli-errors.ts';
import { readEnvFile } from './env-file.ts';
import { readSessionPolicy } from './session-policy-file.ts';
import { parseHostList, readHostsFile } from './hosts-file.ts';

/** `credfwd launch`'s flags, as commander parses them. */
export interface LaunchFlags {
  /** Local workers; 1 unless hosts are given. */
  workers?: number;
  hosts?: string;
  hostsFile?: string;
  workersPerHost?: number;
  sshConfig?: string;
  sshOption: string[];
  allowPartial?: boolean;
  giveUpAfter?: string;
  direct?: boolean;
  credentials: string;
  env: string[];
  envFile?: string;
  region?: string;
  duration?: string;
  delivery?: string;
  /** Agents also serve the endpoint delivery at this container-reachable address. */
  endpointListen?: string;
  /** Agents answer IMDSv1 requests in imds delivery. */
  imdsV1?: boolean;
  refreshInterval?: string;
  onRefresh: string;
  json?: boolean;
  listen?: string;
  publicAddress?: string;
  coordinator?: string;
  coordinatorPin?: string;
  lease?: string;
  keep?: boolean;
  /** `s3://bucket[/prefix][:read|:write]`, repeatable: the sessions are scoped down to these. */
  scope: string[];
  sessionPolicy?: string;
  auditLog?: string;
  verbose?: boolean;
  debug?: boolean;
}

/** `--workers`: a whole number from 0 to 1000. */
export function parseWorkers(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 0 || n > 1000) throw new InvalidArgumentError('expected a whole number from 0 to 1000');
  return n;
}

/** `--workers-per-host`: a whole number from 1 to 64. */
export function parseWorkersPerHost(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return n;
}

/** Gathers a repeatable flag's values. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function credentialsOption(value: string): CredentialsOption {
  if (value === 'forward' || value === 'none') return value;
  if (value.startsWith('role:')) return value as `role:${string}`;
  throw usage(`--credentials ${JSON.stringify(value.slice(0, 100))} is not a mode`, 'use forward, none or role:<role ARN>');
}

function deliveryOption(value: string): 'env' | 'endpoint' | 'imds' | 'process' {
  if (value === 'env' || value === 'endpoint' || value === 'imds' || value === 'process') return value;
  throw usage(`--delivery ${JSON.stringify(value.slice(0, 40))} is not a delivery mode`, 'use env (AWS_* variables), endpoint (a loopback credentials endpoint SDKs poll) imds (a loopback IMDSv2-compatible endpoint) or process (a profile whose credential_process asks the agent)');
}

/** `--on-refresh`: none, restart or signal:NAME. */
export function onRefreshOption(value: string): OnRefresh {
  const parsed = onRefreshSchema.safeParse(value);
  if (!parsed.success) throw usage(`--on-refresh ${JSON.stringify(value.slice(0, 40))} is not none, restart or signal:NAME`, 'for example --on-refresh restart or --on-refresh signal:SIGHUP');
  return parsed.data;
}

function environFrom(flags: LaunchFlags): Record<string, string> {
  const environ = flags.envFile ? readEnvFile(flags.envFile) : {};
  for (const pair of flags.env) {
    const eq = pair.indexOf('=');
    // The value is never echoed: it may be a secret.
    if (eq <= 0) throw usage(`--env ${JSON.stringify(pair.slice(0, Math.max(eq, 0)) || pair.slice(0, 40).split('=')[0])} is not NAME=VALUE`, 'write --env NAME=VALUE, or put variables in a file for --env-file');
    environ[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return environ;
}

/** Flags that take a value for which an empty string means nothing sensible. */
const NON_EMPTY_FLAGS = {
  credentials: '--credentials', envFile: '--env-file', region: '--region', duration: '--duration', delivery: '--delivery',
  refreshInterval: '--refresh-interval', onRefresh: '--on-refresh', listen: '--listen', publicAddress: '--public-address',
  coordinator: '--coordinator', coordinatorPin: '--coordinator-pin', hosts: '--hosts', hostsFile: '--hosts-file', sshConfig: '--ssh-config', giveUpAfter: '--give-up-after', endpointListen: '--endpoint-listen',
  sessionPolicy: '--session-policy', auditLog: '--audit-log',
} as const satisfies Partial<Record<keyof LaunchFlags, string>>;

/** `https://HOST:PORT`, as the admin client dials it; anything else is a usage error before anything starts. */
function checkCoordinatorUrl(url: string): void {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed?.protocol !== 'https:' || !parsed.port || (parsed.pathname !== '/' && parsed.pathname !== '')) {
    throw usage(`--coordinator ${JSON.stringify(url.slice(0, 100))} is not https://HOST:PORT`, 'for example --coordinator https://credfwd.internal:7443, as credfwd serve printed it');
  }
}

/** Checks what the flags say of each other, before anything starts (and so before any STS call). */
export function checkLaunchFlags(command: string[], flags: LaunchFlags): void {
  for (const [key, flag] of Object.entries(NON_EMPTY_FLAGS)) {
    if (flags[key as keyof typeof NON_EMPTY_FLAGS]?.trim() === '') throw usage(`${flag} is empty`, `give ${flag} a value, or leave it out for the default`);
  }
  if (flags.workers === 0 && command.length > 0) {
    throw usage('--workers 0 leaves no worker to run the command on', 'use --workers 1 or more, or launch without a command to serve agents that join from elsewhere');
  }
  checkHostFlags(flags);
  checkAgentServerFlags(flags);
  if (flags.coordinator !== undefined) checkCoordinatorUrl(flags.coordinator);
  if (flags.coordinator !== undefined && flags.auditLog !== undefined) throw usage('--audit-log is for a local cluster: a service keeps its own', 'drop --audit-log; the service writes audit lines to its --audit-log');
}

/** The agent's own servers' flags apply to the delivery that starts them (default env). */
function checkAgentServerFlags(flags: LaunchFlags): void {
  const delivery = flags.delivery ?? 'env';
  if (flags.imdsV1 && delivery !== 'imds') throw usage(`--imds-v1 applies to --delivery imds, not ${delivery}`, 'add --delivery imds, or drop --imds-v1');
  if (flags.endpointListen === undefined) return;
  if (delivery !== 'endpoint') throw usage(`--endpoint-listen applies to --delivery endpoint, not ${delivery}`, 'add --delivery endpoint, or drop --endpoint-listen');
  parseEndpointListen(flags.endpointListen);
}

const SSH_ONLY_FLAGS = {
  workersPerHost: '--workers-per-host', sshConfig: '--ssh-config', allowPartial: '--allow-partial', direct: '--direct', giveUpAfter: '--give-up-after',
} as const satisfies Partial<Record<keyof LaunchFlags, string>>;

function checkHostFlags(flags: LaunchFlags): void {
  const onHosts = flags.hosts !== undefined || flags.hostsFile !== undefined;
  if (flags.hosts !== undefined && flags.hostsFile !== undefined) throw usage('--hosts and --hosts-file both name the hosts', 'give one of them');
  if (onHosts && flags.workers !== undefined) throw usage('--workers counts local workers and does not combine with --hosts', 'use --workers-per-host N to start N agents on each host');
  if (!onHosts) {
    const stray = Object.entries(SSH_ONLY_FLAGS).find(([key]) => flags[key as keyof typeof SSH_ONLY_FLAGS] !== undefined)?.[1] ?? (flags.sshOption.length > 0 ? '--ssh-option' : undefined);
    if (stray) throw usage(`${stray} applies to SSH hosts only`, 'add --hosts HOST[,HOST…] or --hosts-file FILE');
  }
  if (flags.direct && flags.coordinator === undefined && flags.publicAddress === undefined) {
    throw usage('--direct needs an address the hosts can dial', 'add --public-address HOST:PORT (and --listen 0.0.0.0:PORT), or drop --direct to go through the SSH tunnel');
  }
}

/** Where the flags place the workers: local processes, or agents on SSH hosts. */
export function placementFrom(flags: LaunchFlags): WorkerPlacementOptions {
  const hosts = flags.hosts !== undefined ? parseHostList(flags.hosts) : flags.hostsFile !== undefined ? readHostsFile(flags.hostsFile) : undefined;
  const agentServers = {
    ...(flags.endpointListen !== undefined ? { endpointListen: flags.endpointListen } : {}),
    ...(flags.imdsV1 ? { imdsV1: true } : {}),
  };
  if (hosts === undefined) return { workers: flags.workers ?? 1, ...agentServers };
  if (hosts.length === 0) throw usage('--hosts names no host', 'write --hosts HOST[,HOST…]');
  return {
    hosts,
    ...(flags.workersPerHost !== undefined ? { workersPerHost: flags.workersPerHost } : {}),
    ...(flags.sshConfig !== undefined || flags.sshOption.length > 0
      ? { ssh: { ...(flags.sshConfig !== undefined ? { configFile: flags.sshConfig } : {}), options: flags.sshOption } }
      : {}),
    ...(flags.allowPartial ? { allowPartial: true } : {}),
    ...(flags.giveUpAfter !== undefined ? { giveUpAfterSeconds: parseDuration(flags.giveUpAfter, '--give-up-after') } : {}),
    ...agentServers,
  };
}

/** The cluster options both launches take from the flags: embedded and through a service. */
export function clusterOptionsFrom(flags: LaunchFlags): ClusterOptions {
  return {
    credentials: credentialsOption(flags.credentials),
    environ: environFrom(flags),
    ...(flags.region !== undefined ? { region: flags.region } : {}),
    ...(flags.duration !== undefined ? { durationSeconds: parseDuration(flags.duration, '--duration') } : {}),
    ...(flags.delivery !== undefined ? { delivery: deliveryOption(flags.delivery) } : {}),
    ...(flags.refreshInterval !== undefined ? { refreshIntervalSeconds: parseDuration(flags.refreshInterval, '--refresh-interval') } : {}),
    ...(flags.scope.length > 0 ? { scopes: flags.scope } : {}),
    ...(flags.sessionPolicy !== undefined ? { sessionPolicy: readSessionPolicy(flags.sessionPolicy) } : {}),
  };
}

/**
 * `--lease` in seconds, null for `--keep`, undefined for the service's
 * default; both only mean something for a cluster on a service.
 */
export function leaseSecondsFrom(flags: LaunchFlags): number | null | undefined {
  if ((flags.lease !== undefined || flags.keep) && !flags.coordinator) throw usage('--lease and --keep apply to clusters on a service', 'add --coordinator https://HOST:PORT, or drop them: a local cluster always ends with its launcher');
  if (flags.lease !== undefined && flags.keep) throw usage('--lease and --keep contradict each other', '--keep means no lease: the cluster stays until deleted');
  if (flags.keep) return null;
  if (flags.lease === undefined) return undefined;
  const seconds = parseDuration(flags.lease, '--lease');
  if (seconds < MIN_LEASE_SECONDS || seconds > MAX_LEASE_SECONDS) throw usage(`--lease ${JSON.stringify(flags.lease)} is out of range`, `give ${MIN_LEASE_SECONDS}s to ${MAX_LEASE_SECONDS / 86400}d; the launcher renews it every third of that`);
  return seconds;
}
