import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { CredfwdError, cleanLauncherEnv, type Logger } from '@credfwd/shared';

/**
 * The agent's executable. The coordinator never imports agent code (they
 * meet only in shared's protocol); it only needs the file to start.
 */
function agentEntryPoint(): string {
  return createRequire(import.meta.url).resolve('@credfwd/worker-agent/bin');
}

/** Kept of each agent's stderr, to explain an agent that died during start-up. */
const STDERR_TAIL_CHARS = 4096;
/** How long an agent has to exit after its cluster is revoked before it is killed. */
const STOP_GRACE_MS = 5_000;

export interface LocalAgentsOptions {
  count: number;
  clusterId: string;
  /** A secret: handed over in the environment, never argv. */
  joinString: string;
  logger: Logger;
  /** Added to the agents' clean environment: the worker's own platform variables. */
  workerEnv?: Record<string, string>;
  /** Echo agents' log lines to this process's stderr. */
  echoLogs?: boolean;
}

interface LocalAgent {
  id: string;
  child: ChildProcess;
  stderrTail: string;
  exited: Promise<void>;
}

/** Agents running as child processes of the launcher. */
export class LocalAgents {
  readonly ids: string[];
  readonly #agents: LocalAgent[];
  readonly #logger: Logger;
  #stopping = false;
  #onUnexpectedExit: ((error: CredfwdError) => void) | undefined;

  private constructor(agents: LocalAgent[], logger: Logger) {
    this.#agents = agents;
    this.ids = agents.map((a) => a.id);
    this.#logger = logger;
  }

  /**
   * Starts `count` agents with a clean environment: the launcher's minus
   * every AWS_* variable and credfwd secret, so null mode really falls back
   * to the worker's own identity.
   */
  static start(options: LocalAgentsOptions): LocalAgents {
    const entry = agentEntryPoint();
    const base = cleanLauncherEnv(process.env);
    const agents: LocalAgent[] = [];
    for (let i = 1; i <= options.count; i++) {
      const id = `${options.clusterId}-w${i}`;
      const child = spawn(process.execPath, [entry, 'join'], {
        env: { ...base, ...options.workerEnv, CREDFWD_JOIN: options.joinString, CREDFWD_AGENT_ID: id, CREDFWD_LOG_LEVEL: process.env.CREDFWD_LOG_LEVEL ?? 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const agent: LocalAgent = { id, child, stderrTail: '', exited: new Promise((resolve) => child.once('exit', () => resolve())) };
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        agent.stderrTail = (agent.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
        if (options.echoLogs) process.stderr.write(chunk);
      });
      agents.push(agent);
    }
    const local = new LocalAgents(agents, options.logger);
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
    const lastLine = agent.stderrTail.trim().split('\n').at(-1) ?? '';
    this.#logger.error({ agentId: agent.id, code, detail }, 'local agent exited unexpectedly');
    this.#onUnexpectedExit?.(new CredfwdError(
      'AGENT_START_FAILED',
      `local agent ${agent.id} exited (${code ?? detail ?? 'unknown'})${lastLine ? `: ${lastLine.slice(0, 500)}` : ''}`,
      'run with CREDFWD_LOG_LEVEL=debug to see the agent logs',
    ));
  }
}
