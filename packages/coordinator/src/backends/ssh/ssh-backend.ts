import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CredfwdError } from '@credfwd/shared';
import type { AgentProgram } from '../agent-program.ts';
import type { AgentLaunchRequest, LaunchBackend } from '../launch-backend.ts';
import { AgentSession } from './agent-session.ts';
import { probeHost, remoteAgentPath, type HostProbe } from './preflight.ts';
import { SshAgents, stopSessions, type FailedHost, type HostReport } from './ssh-agents.ts';
import { launchAborted } from '../../core/index.ts';
import type { SshSettings } from './ssh-command.ts';
import { parseSshHosts, type SshHost } from './ssh-host.ts';
import { ensureAgent } from './upload.ts';
import { checkWorkerEnv } from './worker-env.ts';

export interface SshBackendOptions {
  /** `[user@]host[:port]` or aliases of the user's SSH config. */
  hosts: readonly string[];
  /** Agents per host (default 1). */
  workersPerHost?: number;
  ssh?: {
    /** `ssh -F`. */
    configFile?: string;
    /** `ssh -o` values, e.g. `ProxyJump=bastion`; they win over credfwd's defaults, never over BatchMode. */
    options?: readonly string[];
    /** ssh's ConnectTimeout (default 10 s). */
    connectTimeoutSeconds?: number;
  };
  /** The one-file agent to upload and run with each host's node. */
  program: AgentProgram;
  /** Start on the hosts that pass the checks and report the others, instead of failing the launch. */
  allowPartial?: boolean;
  /**
   * How long a host may stay unreachable before it is reported lost; its
   * agent (`--give-up-after`) stops itself and its workloads after as long
   * without a coordinator, which is also how long agents outlive a launcher
   * killed with SIGKILL (default 600 s).
   */
  giveUpAfterSeconds?: number;
  /** More `credfwd-agent join` flags for every agent (--endpoint-listen, --imds-v1): never secrets, as they travel in the remote command line. */
  agentArgs?: readonly string[];
}

const MAX_WORKERS_PER_HOST = 64;
const DEFAULT_GIVE_UP_AFTER_SECONDS = 600;

/**
 * Starts agents on other machines over the system OpenSSH client. Every host
 * is checked (reachable, host key known, login accepted, node 20+) before
 * any agent starts anywhere; the agent file is uploaded where its hash is
 * not cached yet; each agent then runs in an ssh session of its own that
 * carries its join string on stdin and, unless `direct`, the reverse tunnel
 * it dials the coordinator through. A session that drops is re-dialled
 * while its agent serves on (see AgentLink); a host unreachable for
 * `giveUpAfterSeconds` is reported lost, and its agent stops itself.
 */
export class SshBackend implements LaunchBackend {
  readonly #hosts: SshHost[];
  readonly #workersPerHost: number;
  readonly #settings: SshSettings;
  readonly #program: AgentProgram;
  readonly #allowPartial: boolean;
  readonly #giveUpAfterSeconds: number;
  readonly #agentArgs: readonly string[];

  constructor(options: SshBackendOptions) {
    this.#hosts = parseSshHosts(options.hosts);
    this.#workersPerHost = options.workersPerHost ?? 1;
    if (!Number.isInteger(this.#workersPerHost) || this.#workersPerHost < 1 || this.#workersPerHost > MAX_WORKERS_PER_HOST) {
      throw new CredfwdError('CONFIG_INVALID', `workers per host must be a whole number from 1 to ${MAX_WORKERS_PER_HOST}, not ${options.workersPerHost}`, 'pass --workers-per-host N');
    }
    const timeout = options.ssh?.connectTimeoutSeconds ?? 10;
    if (!Number.isInteger(timeout) || timeout < 1) {
      throw new CredfwdError('CONFIG_INVALID', `the SSH connect timeout must be a whole number of seconds, not ${timeout}`, 'pass a timeout of 1 s or more');
    }
    this.#settings = {
      ...(options.ssh?.configFile === undefined ? {} : { configFile: options.ssh.configFile }),
      options: options.ssh?.options ?? [],
      connectTimeoutSeconds: timeout,
    };
    this.#program = options.program;
    this.#allowPartial = options.allowPartial ?? false;
    this.#giveUpAfterSeconds = options.giveUpAfterSeconds ?? DEFAULT_GIVE_UP_AFTER_SECONDS;
    this.#agentArgs = options.agentArgs ?? [];
    if (!Number.isInteger(this.#giveUpAfterSeconds) || this.#giveUpAfterSeconds < 1) {
      throw new CredfwdError('CONFIG_INVALID', `the give-up time must be a whole number of seconds, not ${options.giveUpAfterSeconds}`, 'pass 1 s or more: how long a host may stay unreachable before its agent stops itself');
    }
  }

  /**
   * Checks every host, puts the agent where it is missing and starts the
   * agents; resolves once each has its join string (joining is the
   * cluster's to wait for). Rejects, leaving nothing running, when a host
   * fails and `allowPartial` is off (or every host fails).
   */
  async start(request: AgentLaunchRequest): Promise<SshAgents> {
    checkWorkerEnv(request.workerEnv ?? {});
    const { signal, logger } = request;
    const agent = await readFile(this.#program.file).catch((cause: NodeJS.ErrnoException) => {
      throw new CredfwdError('AGENT_BUNDLE_MISSING', `cannot read the agent file ${this.#program.file}: ${cause.code ?? cause.message}`, 'run `pnpm build` to make the one-file agent', { cause });
    });
    const sha256 = createHash('sha256').update(agent).digest('hex');
    const failed: FailedHost[] = [];

    const probes = await this.#onEveryHost(this.#hosts, (host) => host, failed, (host) => probeHost(this.#settings, host, sha256, signal));
    const placed = await this.#onEveryHost(probes, (probe) => probe.host, failed, async (probe) => {
      const outcome = await ensureAgent(this.#settings, probe, agent, sha256, signal);
      logger.info({ host: probe.host.name, nodeVersion: probe.nodeVersion, agent: outcome }, outcome === 'cached' ? 'agent already on host: upload skipped' : 'agent uploaded');
      return { probe, report: { host: probe.host.name, nodeVersion: probe.nodeVersion, agent: outcome } satisfies HostReport };
    });
    const started = await this.#onEveryHost(placed, (p) => p.probe.host, failed, async (p) => ({ ...p, sessions: await this.#startHost(p.probe, sha256, request) }));
    const sessions = started.flatMap((s) => s.sessions);
    if (signal?.aborted) {
      // Ended as close() ends them, by stdin, and waited for: killing ssh let an interrupted launcher exit while agents still ran on the hosts.
      await stopSessions(sessions);
      throw launchAborted(signal);
    }
    for (const f of failed) logger.warn({ host: f.host, code: f.error.code, reason: f.error.message }, 'host left out of the cluster');
    return new SshAgents(sessions, started.map((s) => s.report), failed, logger, this.#giveUpAfterSeconds * 1000);
  }

  /**
   * Runs one step on every host at once. Without allowPartial any failure
   * fails the launch once every host has answered, naming every host that
   * failed; with it, failed hosts are recorded and left out (unless none is left).
   */
  async #onEveryHost<T, R>(items: readonly T[], hostOf: (item: T) => SshHost, failed: FailedHost[], step: (item: T) => Promise<R>): Promise<R[]> {
    const settled = await Promise.allSettled(items.map(step));
    const done: R[] = [];
    for (const [i, outcome] of settled.entries()) {
      if (outcome.status === 'fulfilled') done.push(outcome.value);
      else failed.push({ host: hostOf(items[i]!).name, error: asCredfwdError(outcome.reason) });
    }
    if (failed.length > 0 && (!this.#allowPartial || done.length === 0 || failed.some((f) => f.error.code === 'ABORTED'))) {
      await stopSessions(done.flatMap((d) => (isStarted(d) ? d.sessions : [])));
      throw hostsFailed(failed, this.#hosts.length);
    }
    return done;
  }

  /** Opens every agent session of one host; if one fails, the host's others are ended and the host fails. */
  async #startHost(probe: HostProbe, sha256: string, request: AgentLaunchRequest): Promise<AgentSession[]> {
    const ids = Array.from({ length: this.#workersPerHost }, (_, i) => `${request.clusterId}-${probe.host.label}-w${i + 1}`);
    const settled = await Promise.allSettled(ids.map((agentId) => AgentSession.open({
      settings: this.#settings,
      host: probe.host,
      agentId,
      // --outlive-stdin: a dropped link ends the session, not the agent, which serves on while the link is re-established.
      command: [probe.node, ...this.#program.nodeArgs, remoteAgentPath(probe, sha256), 'join', '--stdin', '--outlive-stdin', '--give-up-after', `${this.#giveUpAfterSeconds}s`, ...this.#agentArgs],
      agentFileName: `agent-${sha256}.mjs`,
      logLevel: process.env.CREDFWD_LOG_LEVEL ?? 'info',
      tunnelTo: request.direct ? undefined : request.coordinatorAddress,
      joinString: request.joinString,
      workerEnv: request.workerEnv ?? {},
      echoLogs: request.echoLogs ?? false,
      ...(request.signal ? { signal: request.signal } : {}),
    })));
    const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure) {
      await stopSessions(opened);
      throw failure.reason;
    }
    return opened;
  }
}

function isStarted(item: unknown): item is { sessions: AgentSession[] } {
  return typeof item === 'object' && item !== null && 'sessions' in item;
}

function asCredfwdError(err: unknown): CredfwdError {
  return err instanceof CredfwdError ? err : new CredfwdError('INTERNAL', `SSH launch failed: ${err instanceof Error ? err.message : String(err)}`, 'please report this with --debug output', { cause: err });
}

/** One host's error as it is, or one error naming every host that failed, with the first one's code and hint. */
function hostsFailed(failed: readonly FailedHost[], total: number): CredfwdError {
  const [first] = failed;
  if (failed.length === 1 || first!.error.code === 'ABORTED') return first!.error;
  return new CredfwdError(
    first!.error.code,
    `${failed.length} of ${total} hosts cannot run agents: ${failed.map((f) => `${f.host}: [${f.error.code}] ${f.error.message}`).join('; ')}`,
    `${first!.error.hint}; --allow-partial starts the cluster on the hosts that work`,
    { retryable: failed.every((f) => f.error.retryable) },
  );
}
