import { spawn, type ChildProcess } from 'node:child_process';
import { CredfwdError, cleanLauncherEnv, type Logger } from '@credfwd/shared';
import { defaultAgentProgram, type AgentProgram } from '../agent-program.ts';
import type { AgentLaunchRequest, LaunchBackend, LaunchedAgents, WorkerPlacement } from '../launch-backend.ts';

/** Kept of each agent's stderr, to explain an agent that died during start-up. */
const STDERR_TAIL_CHARS = 4096;
/** How long an agent has to exit after its cluster is revoked before it is killed. */
const STOP_GRACE_MS = 5_000;

/** The host local workers are placed on, as results name it. */
export const LOCAL_HOST = 'localhost';

export interface LocalBackendOptions {
  /** Agents to start on this machine. */
  count: number;
  /** What each agent runs; the agent this installation ships by default, looked up only once an agent starts. */
  program?: AgentProgram;
  /** More `credfwd-agent join` flags for every agent (--endpoint-listen, --imds-v1). */
  agentArgs?: readonly string[];
}

/**
 * Workers as child processes of the launcher. Local agents dial the join
 * string's addresses themselves, so the request's tunnel fields do not apply.
 */
export class LocalBackend implements LaunchBackend {
  readonly #options: LocalBackendOptions;

  constructor(options: LocalBackendOptions) {
    this.#options = options;
  }

  async start(request: AgentLaunchRequest): Promise<LaunchedAgents> {
    return LocalAgents.start(this.#options, request);
  }
}

interface LocalAgent {
  id: string;
  child: ChildProcess;
  stderrTail: string;
  exited: Promise<void>;
}

/** Agents running as child processes of the launcher. */
class LocalAgents implements LaunchedAgents {
  readonly workers: readonly WorkerPlacement[];
  readonly #agents: LocalAgent[];
  readonly #logger: Logger;
  #stopping = false;
  #onUnexpectedExit: ((error: CredfwdError) => void) | undefined;

  private constructor(agents: LocalAgent[], logger: Logger) {
    this.#agents = agents;
    this.workers = agents.map((a) => ({ agentId: a.id, host: LOCAL_HOST }));
    this.#logger = logger;
  }

  /**
   * Starts `count` agents with a clean environment: the launcher's minus
   * every AWS_* variable and credfwd secret, so null mode really falls back
   * to the worker's own identity. Each gets the join string on a stdin pipe
   * that stays open for the launcher's life: when the launcher dies, however
   * it dies, the kernel closes the pipe and the agent stops its workloads
   * (`credfwd-agent join --stdin`).
   */
  static start({ count, program: given, agentArgs = [] }: LocalBackendOptions, request: AgentLaunchRequest): LocalAgents {
    const base = cleanLauncherEnv(process.env);
    const agents: LocalAgent[] = [];
    if (count === 0) return new LocalAgents(agents, request.logger);
    const program = given ?? defaultAgentProgram();
    for (let i = 1; i <= count; i++) {
      const id = `${request.clusterId}-w${i}`;
      const child = spawn(process.execPath, [...program.nodeArgs, program.file, 'join', '--stdin', ...agentArgs], {
        env: { ...base, ...request.workerEnv, CREDFWD_AGENT_ID: id, CREDFWD_LOG_LEVEL: process.env.CREDFWD_LOG_LEVEL ?? 'info' },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      // An agent that died early closed its end: the 'exit' handler below reports it, not an EPIPE here.
      child.stdin?.on('error', () => {});
      child.stdin?.write(`${request.joinString}\n`);
      const agent: LocalAgent = { id, child, stderrTail: '', exited: new Promise((resolve) => child.once('exit', () => resolve())) };
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        agent.stderrTail = (agent.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
        if (request.echoLogs) process.stderr.write(chunk);
      });
      agents.push(agent);
    }
    const local = new LocalAgents(agents, request.logger);
    for (const agent of agents) {
      agent.child.once('error', (err) => local.#exited(agent, null, err.message));
      agent.child.once('exit', (code, signal) => local.#exited(agent, code, signal));
    }
    return local;
  }

  /** Called once with a clear error if any agent dies while the cluster runs. */
  onUnexpectedExit(listener: (error: CredfwdError) => void): void {
    this.#onUnexpectedExit = listener;
  }

  /** Waits for agents to leave after their cluster was revoked; kills stragglers. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const all = Promise.all(this.#agents.map((a) => a.exited));
    const grace = setTimeout(() => {
      for (const a of this.#agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
    }, STOP_GRACE_MS);
    const kill = setTimeout(() => {
      for (const a of this.#agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
    }, STOP_GRACE_MS * 2);
    await all;
    clearTimeout(grace);
    clearTimeout(kill);
  }

  /** Signals every agent at once (used when the launcher itself is interrupted). */
  terminate(): void {
    this.#stopping = true;
    for (const a of this.#agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
  }

  #exited(agent: LocalAgent, code: number | null, detail: string | null): void {
    if (this.#stopping) return;
    const reported = agentReport(agent.stderrTail);
    this.#logger.error({ agentId: agent.id, code, detail }, 'local agent exited unexpectedly');
    this.#onUnexpectedExit?.(new CredfwdError(
      'AGENT_START_FAILED',
      `local agent ${agent.id} exited (${code ?? detail ?? 'unknown'})${reported ? `: ${reported.error.slice(0, 500)}` : ''}`,
      reported?.hint ? `${reported.hint.slice(0, 500)} (CREDFWD_LOG_LEVEL=debug shows the agent logs)` : 'run with CREDFWD_LOG_LEVEL=debug to see the agent logs',
    ));
  }
}

/**
 * The last `error[CODE]: …` line an agent printed on stderr, with the
 * `hint: …` line after it: among its JSON log lines, what explains its exit.
 */
export function agentReport(stderr: string): { error: string; hint: string | undefined } | undefined {
  const lines = stderr.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('error[')) continue;
    const next = lines[i + 1];
    return { error: line, hint: next?.startsWith('hint: ') ? next.slice('hint: '.length) : undefined };
  }
  return undefined;
}
