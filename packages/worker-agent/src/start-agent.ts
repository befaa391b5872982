import {
  CredfwdError,
  errorMessage,
  isCredfwdError,
  type CredentialsPush,
  type EndpointInfo,
  type EndpointListen,
  type Env,
  type JoinInfo,
  type Logger,
  type Run,
} from '@credfwd/shared';
import type { Session } from './agent-connection.ts';
import { systemClock, type Clock } from './clock.ts';
import { Connector } from './connector.ts';
import { CoordinatorLossWatch, DEFAULT_GIVE_UP_AFTER_MS } from './coordinator-loss-watch.ts';
import { CredentialStore, type CredentialsSummary, type StoredCredentials } from './credential-store.ts';
import { DeliveryServers } from './delivery-servers.ts';
import { openStringRecord } from './open-string-record.ts';
import type { ReconnectTimerOptions } from './reconnect-timer.ts';
import { refreshAction } from './refresh-action.ts';
import { taskEnvironment, type TaskEnvironment } from './task-environment.ts';
import { TaskFrameQueue } from './task-frame-queue.ts';
import { TaskRunner } from './task-runner.ts';

/** Options of {@link startAgent}. */
export interface AgentOptions {
  join: JoinInfo;
  agentId: string;
  logger: Logger;
  /** Environment workloads start from; the agent's own at start by default. credfwd's variables are never passed on. */
  baseEnv?: Env;
  /** Clock that credential expiry is reckoned on. */
  clock?: Clock;
  /** The coordinator's ping period; two missed pings drop the connection. */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff after a lost connection; 250 ms doubling to 2 min, ±20 %, by default. */
  backoff?: ReconnectTimerOptions;
  /** Time between SIGTERM and SIGKILL when a task is stopped, timed out or restarted (default 5 s). */
  killGraceMs?: number;
  /**
   * After this long without a coordinator, whatever credentials it still
   * holds, the agent stops its tasks and ends with AGENT_UNREACHABLE (default 10 min).
   */
  giveUpAfterMs?: number;
  /** In imds delivery, also answer instance metadata requests without a session token (IMDSv1). */
  imdsV1?: boolean;
  /** In endpoint delivery, also serve the credentials endpoint at this address, for containers on the worker. */
  endpointListen?: EndpointListen;
}

/** How an agent that stopped without error ended. */
export interface AgentEnd {
  reason: 'revoked' | 'closed';
}

/** A running agent. */
export interface Agent {
  /** Resolves once welcomed and, when credentials are forwarded, holding the first of them; rejects on a fatal error. */
  ready: Promise<void>;
  /** Settles when the agent stops: revoked by the coordinator or closed here; rejects with a fatal CredfwdError. */
  done: Promise<AgentEnd>;
  /** The unexpired credentials held, without their secrets. */
  credentials(): CredentialsSummary | undefined;
  /** Where workloads fetch credentials, once the cluster's endpoint delivery has started it. */
  endpoint(): EndpointInfo | undefined;
  /** The instance metadata endpoint's base URL, once the cluster's imds delivery has started it. */
  imdsUrl(): string | undefined;
  /** Kills running tasks and closes the connection with 1000; idempotent. */
  close(): Promise<void>;
}

/** Connects to the cluster's coordinator and serves it until revoked, closed or refused. */
export function startAgent(options: AgentOptions): Agent {
  const runtime = new AgentRuntime(options);
  runtime.start();
  return {
    ready: runtime.ready,
    done: runtime.done,
    credentials: () => runtime.credentials(),
    endpoint: () => runtime.endpoint(),
    imdsUrl: () => runtime.imdsUrl(),
    close: () => runtime.close(),
  };
}

interface Settle<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

class AgentRuntime {
  readonly ready: Promise<void>;
  readonly done: Promise<AgentEnd>;
  readonly #settleReady: Settle<void>;
  readonly #settleDone: Settle<AgentEnd>;
  readonly #logger: Logger;
  // Snapshot: later changes to the agent's environment must not leak into workloads.
  readonly #baseEnv: Env;
  readonly #clock: Clock;
  readonly #store: CredentialStore;
  readonly #runner: TaskRunner;
  readonly #connector: Connector;
  readonly #lossWatch: CoordinatorLossWatch;
  // Task frames in order; held while there is no connection, as the coordinator still needs them to finish its run.
  readonly #taskFrames: TaskFrameQueue;
  readonly #servers: DeliveryServers;
  #stopping: Promise<void> | undefined;
  #region: string | null = null;

  constructor(options: AgentOptions) {
    this.#logger = options.logger.child({ clusterId: options.join.clusterId, agentId: options.agentId });
    this.#baseEnv = { ...(options.baseEnv ?? process.env) };
    let settleReady!: Settle<void>;
    this.ready = new Promise((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    let settleDone!: Settle<AgentEnd>;
    this.done = new Promise((resolve, reject) => {
      settleDone = { resolve, reject };
    });
    this.#settleReady = settleReady;
    this.#settleDone = settleDone;
    // Callers may await only one of the two; the other must not become an unhandled rejection.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    this.#clock = options.clock ?? systemClock;
    this.#store = new CredentialStore({ logger: this.#logger, clock: this.#clock });
    this.#servers = new DeliveryServers({
      credentials: () => this.#store.current(),
      region: () => this.#region,
      clock: this.#clock,
      logger: this.#logger,
      imdsV1: options.imdsV1 === true,
      ...(options.endpointListen ? { endpointListen: options.endpointListen } : {}),
    });
    this.#taskFrames = new TaskFrameQueue({
      send: (message, written) => this.#connector.send(message, written),
      bufferedAmount: () => this.#connector.bufferedAmount(),
    });
    this.#runner = new TaskRunner({
      logger: this.#logger,
      killGraceMs: options.killGraceMs,
      sink: this.#taskFrames,
    });
    this.#connector = new Connector({
      join: options.join,
      agentId: options.agentId,
      logger: this.#logger,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      backoff: options.backoff,
      handlers: {
        welcome: (session) => this.#welcome(session),
        message: (message, session) => this.#message(message, session),
        revoked: () => void this.#stop({ reason: 'revoked' }),
        fatal: (error) => void this.#stop(error),
        disconnected: () => this.#lossWatch.lost(),
      },
    });
    const giveUpAfterMs = options.giveUpAfterMs ?? DEFAULT_GIVE_UP_AFTER_MS;
    this.#lossWatch = new CoordinatorLossWatch({
      clock: this.#clock,
      giveUpAfterMs,
      onGiveUp: () => void this.#stop(new CredfwdError(
        'AGENT_UNREACHABLE',
        `no coordinator answered for ${Math.round(giveUpAfterMs / 1000)} s; stopping tasks and exiting`,
        'the cluster is gone (its launcher exited or its coordinator is down for good): join a running cluster with its join string',
      )),
    });
  }

  start(): void {
    // Counted from the start too: an agent that never reaches its coordinator gives up as well.
    this.#lossWatch.lost();
    this.#connector.start();
  }

  credentials(): CredentialsSummary | undefined {
    return this.#store.summary();
  }

  endpoint(): EndpointInfo | undefined {
    return this.#servers.endpoint();
  }

  imdsUrl(): string | undefined {
    return this.#servers.imdsUrl();
  }

  close(): Promise<void> {
    return this.#stop({ reason: 'closed' });
  }

  async #welcome(session: Session): Promise<void> {
    this.#lossWatch.found();
    this.#logger.info({ delivery: session.delivery, region: session.region, environNames: Object.keys(session.environ) }, 'welcomed by coordinator');
    this.#region = session.region;
    if (this.#stopping) return;
    try {
      await this.#servers.start(session.delivery);
    } catch (err) {
      void this.#stop(isCredfwdError(err) ? err : new CredfwdError('INTERNAL', `delivery could not start: ${errorMessage(err)}`, 'rerun with --debug and report it'));
      return;
    }
    if (session.delivery === 'none') this.#settleReady.resolve();
    this.#taskFrames.flush();
  }

  async #message(message: CredentialsPush | Run, session: Session): Promise<void> {
    if (message.type === 'credentials') {
      const stored = await this.#store.receive(message, session.key);
      // Acknowledge a redelivery of what is held too: it tells the coordinator this agent is current.
      if (this.#store.seq === message.seq) {
        this.#connector.send({ type: 'ack', seq: message.seq });
        this.#settleReady.resolve();
      }
      if (stored) this.#runner.refresh();
    } else {
      await this.#run(message, session);
    }
  }

  async #run(run: Run, session: Session): Promise<void> {
    if (this.#stopping) {
      this.#runner.refuse(run.taskId, 'credfwd-agent: the agent is shutting down');
      return;
    }
    let taskEnv: Record<string, string> | undefined;
    if (run.env !== undefined) {
      try {
        taskEnv = await openStringRecord(session.key, run.env, 'task env');
      } catch (err) {
        if (!isCredfwdError(err)) throw err;
        this.#runner.refuse(run.taskId, `credfwd-agent: ${err.message}`);
        return;
      }
    }
    const build = (credentials: StoredCredentials | undefined): TaskEnvironment =>
      taskEnvironment({ baseEnv: this.#baseEnv, settings: session, credentials, taskEnv, endpoint: this.endpoint(), imdsUrl: this.imdsUrl(), configFile: this.#servers.configFile() });
    const prepared = build(this.#store.current());
    if ('refusal' in prepared) {
      this.#runner.refuse(run.taskId, prepared.refusal);
      return;
    }
    // A restart reads the credentials held at that moment, so it never starts on older or expired ones.
    const choice = refreshAction(run.onRefresh, () => {
      const fresh = build(this.#store.current());
      return 'env' in fresh ? fresh.env : undefined;
    });
    if ('refusal' in choice) {
      this.#runner.refuse(run.taskId, choice.refusal);
      return;
    }
    this.#runner.run({ taskId: run.taskId, argv: run.argv, env: prepared.env, cwd: run.cwd, timeoutMs: run.timeoutMs, onRefresh: choice.action });
  }

  #stop(end: AgentEnd | CredfwdError): Promise<void> {
    this.#stopping ??= this.#shutdown(end);
    return this.#stopping;
  }

  async #shutdown(end: AgentEnd | CredfwdError): Promise<void> {
    if (end instanceof CredfwdError) {
      this.#logger.error({ code: end.code }, end.message);
    } else if (end.reason === 'revoked') {
      this.#logger.warn('the coordinator revoked this cluster; wiping credentials and stopping tasks');
    } else {
      this.#logger.info('agent closing');
    }
    this.#lossWatch.close();
    this.#store.wipe();
    // Tasks go first so that, on a clean close, their exits still reach the coordinator.
    await this.#runner.killAll();
    await this.#connector.close();
    // Again: a push may have landed while the tasks were dying.
    this.#store.wipe();
    // Last, as tasks may use them until they are gone; since the wipe they have answered 503.
    await this.#servers.close();
    if (end instanceof CredfwdError) {
      this.#settleReady.reject(end);
      this.#settleDone.reject(end);
    } else {
      // A no-op once ready has resolved.
      this.#settleReady.reject(notReadyError(end));
      this.#settleDone.resolve(end);
    }
  }
}

function notReadyError(end: AgentEnd): CredfwdError {
  return end.reason === 'revoked'
    ? new CredfwdError('CLUSTER_REVOKED', 'the cluster was revoked before this agent was ready', 'launch a new cluster and join it with its join string')
    : new CredfwdError('CLUSTER_CLOSED', 'the agent was closed before it was ready', 'start the agent again to rejoin the cluster');
}
