import type { Exit, Output } from '@credfwd/shared';
import { TaskCollector, byWorker, type WorkerResult } from '../core/index.ts';

interface Task {
  agentId: string;
  collector: TaskCollector;
  /** When the agent was last seen registered on a live replica. */
  seenAt: number;
}

/** How long a live replica has to report what it dispatched: one that missed the request (a Redis blip) is not waited for beyond it. */
export const DISPATCH_REPORT_MS = 10_000;
/** How long a task's agent may be missing from every live replica before its task counts as lost: failover takes seconds, this leaves room. */
export const LOST_AGENT_MS = 30_000;

/**
 * One admin `run` across replicas, collected by the replica that took the
 * request: each live replica reports the tasks it dispatched, and every
 * output and exit frame reaches this collector whichever replica the agent
 * is connected to by then, so a task outlives a replica's death.
 */
export class ClusterRun {
  readonly requestId: string;
  readonly clusterId: string;
  readonly #waitingFor: Set<string>;
  readonly #tasks = new Map<string, Task>();
  readonly #results: WorkerResult[] = [];
  readonly #done: Promise<WorkerResult[]>;
  #resolve!: (results: WorkerResult[]) => void;

  readonly #startedAt: number;
  #revoked = false;

  constructor(requestId: string, clusterId: string, replicaIds: string[], now: number) {
    this.#startedAt = now;
    this.requestId = requestId;
    this.clusterId = clusterId;
    this.#waitingFor = new Set(replicaIds);
    this.#done = new Promise((resolve) => { this.#resolve = resolve; });
  }

  /** Resolves with one result per worker, sorted by worker id. */
  get done(): Promise<WorkerResult[]> {
    return this.#done;
  }

  /** A replica's report of the tasks it started. */
  dispatched(replicaId: string, tasks: Array<{ agentId: string; taskId: string }>, now: number): void {
    for (const { agentId, taskId } of tasks) this.#tasks.set(taskId, { agentId, collector: new TaskCollector(agentId), seenAt: now });
    this.#waitingFor.delete(replicaId);
    this.#settle();
  }

  /** A task frame; true if it belonged to this run (and to the agent the task was started on). */
  frame(clusterId: string, agentId: string, message: Output | Exit): boolean {
    const task = this.#tasks.get(message.taskId);
    if (!task || clusterId !== this.clusterId || task.agentId !== agentId) return false;
    if (message.type === 'output') task.collector.output(message);
    else this.#finish(message.taskId, task, message.code, message.signal);
    return true;
  }

  /**
   * The cluster was deleted: its agents stop their tasks, send their exits
   * and close, so from now on a task whose agent is on no live replica is
   * over at the next check, not after {@link LOST_AGENT_MS}.
   */
  revoked(): void {
    this.#revoked = true;
  }

  /**
   * Given the replicas alive now and the agents registered on them: stops
   * waiting for reports of dead replicas (or of any after
   * {@link DISPATCH_REPORT_MS}), and ends tasks whose agent has been gone for
   * {@link LOST_AGENT_MS}.
   */
  check(liveReplicaIds: ReadonlySet<string>, registeredAgentIds: ReadonlySet<string>, now: number): void {
    const reportsOverdue = now - this.#startedAt > DISPATCH_REPORT_MS;
    for (const id of this.#waitingFor) if (reportsOverdue || !liveReplicaIds.has(id)) this.#waitingFor.delete(id);
    for (const [taskId, task] of this.#tasks) {
      if (registeredAgentIds.has(task.agentId)) task.seenAt = now;
      else if (this.#revoked || now - task.seenAt > LOST_AGENT_MS) {
        task.collector.note(this.#revoked ? 'credfwd: the cluster was deleted before the command finished\n' : 'credfwd: agent disconnected before the command finished\n');
        this.#finish(taskId, task, null, null);
      }
    }
    this.#settle();
  }

  #finish(taskId: string, task: Task, exitCode: number | null, signal: string | null): void {
    this.#tasks.delete(taskId);
    this.#results.push(task.collector.result(exitCode, signal));
    this.#settle();
  }

  #settle(): void {
    if (this.#waitingFor.size > 0 || this.#tasks.size > 0) return;
    this.#resolve(byWorker(this.#results));
  }
}
