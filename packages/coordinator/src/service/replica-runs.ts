import { randomUUID } from 'node:crypto';
import { errorMessage, type Exit, type Logger, type OnRefresh, type Output } from '@credfwd/shared';
import type { AgentHub, RunRequest, WorkerResult } from '../core/index.ts';
import { ClusterRun } from './cluster-run.ts';
import type { BusMessage, ReplicaBus } from './replica-bus.ts';
import type { ReplicaPresence } from './replica-presence.ts';

/** How often a replica collecting a run checks for dead replicas and lost agents. */
const RUN_CHECK_MS = 1_000;

/** What runs need of their replica. */
export interface ReplicaRunsContext {
  replicaId: string;
  hub: AgentHub;
  bus: ReplicaBus;
  logger: Logger;
  /** Undefined until the replica is listening. */
  presence(): ReplicaPresence | undefined;
}

/**
 * Admin runs across replicas: the replica that takes a request asks every
 * replica (itself included) over the bus to dispatch the command to the
 * agents it holds, and collects their output and exits wherever the agents
 * are connected by then.
 */
export class ReplicaRuns {
  readonly #context: ReplicaRunsContext;
  readonly #runs = new Map<string, ClusterRun>();
  #check: NodeJS.Timeout | undefined;

  constructor(context: ReplicaRunsContext) {
    this.#context = context;
  }

  start(): void {
    this.#check ??= setInterval(() => void this.#checkRuns(), RUN_CHECK_MS);
    this.#check.unref();
  }

  /** Idempotent. */
  close(): void {
    clearInterval(this.#check);
  }

  /** Runs a command on every agent of a cluster, on whichever replica holds it (the lifecycle checked its env). */
  async run(clusterId: string, request: RunRequest): Promise<WorkerResult[]> {
    const replicas = await this.#context.presence()?.liveReplicas() ?? [];
    const requestId = randomUUID();
    const run = new ClusterRun(requestId, clusterId, replicas.map((r) => r.replicaId), Date.now());
    this.#runs.set(requestId, run);
    try {
      const { argv, ...options } = request;
      await this.#context.bus.publish({ type: 'run', requestId, clusterId, argv, options });
      return await run.done;
    } finally {
      this.#runs.delete(requestId);
    }
  }

  /** Dispatches a run another replica (or this one) took to the agents held here. */
  async dispatch(message: Extract<BusMessage, { type: 'run' }>): Promise<void> {
    const { env, cwd, timeoutMs, onRefresh } = message.options;
    await this.#context.hub.dispatch(message.clusterId, message.argv, {
      ...(env ? { env } : {}),
      ...(cwd ? { cwd } : {}),
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(onRefresh ? { onRefresh: onRefresh as OnRefresh } : {}),
    }, (tasks) => this.#context.bus.publish({ type: 'dispatched', requestId: message.requestId, replicaId: this.#context.replicaId, tasks }));
  }

  /** A replica's report of the tasks it started for a run collected here. */
  dispatched(message: Extract<BusMessage, { type: 'dispatched' }>): void {
    this.#runs.get(message.requestId)?.dispatched(message.replicaId, message.tasks, Date.now());
  }

  /** A task frame relayed by the replica that holds its agent. */
  frame(message: Extract<BusMessage, { type: 'task' }>): void {
    for (const run of this.#runs.values()) if (run.frame(message.clusterId, message.agentId, message.message)) return;
  }

  /** Sends a frame of a task this replica does not collect to whichever replica does. */
  relay(clusterId: string, agentId: string, message: Output | Exit): void {
    this.#context.bus.publish({ type: 'task', clusterId, agentId, message }).catch((err: unknown) => {
      this.#context.logger.error({ clusterId, agentId, reason: errorMessage(err) }, 'could not relay a task frame');
    });
  }

  /** Ends the runs of a deleted cluster as soon as their agents are gone. */
  revoked(clusterId: string): void {
    for (const run of this.#runs.values()) if (run.clusterId === clusterId) run.revoked();
  }

  async #checkRuns(): Promise<void> {
    const presence = this.#context.presence();
    if (this.#runs.size === 0 || !presence) return;
    try {
      const live = new Set((await presence.liveReplicas()).map((r) => r.replicaId));
      for (const run of this.#runs.values()) {
        const agents = new Set((await presence.agentsOf(run.clusterId)).map((a) => a.agentId));
        run.check(live, agents, Date.now());
      }
    } catch (err) {
      this.#context.logger.warn({ reason: errorMessage(err) }, 'could not check runs in progress');
    }
  }
}
