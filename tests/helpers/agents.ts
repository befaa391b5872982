import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import type { Cluster, Coordinator } from '@credfwd/coordinator';
import { AGENT_BIN, spawnNode } from './credfwd-cli.ts';
import { collectOutput, type ProcessResult } from './processes.ts';

/** An agent process started the way a remote worker would start it. */
export interface SpawnedAgent {
  child: ChildProcess;
  result: Promise<ProcessResult>;
}

/** Starts `credfwd-agent join [ARGS]` with the join string in CREDFWD_JOIN and the given worker environment. */
export function spawnAgent(joinString: string, agentId: string, workerEnv: Record<string, string> = {}, args: string[] = []): SpawnedAgent {
  const child = spawnNode(AGENT_BIN, ['join', ...args], {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...workerEnv,
    CREDFWD_JOIN: joinString,
    CREDFWD_AGENT_ID: agentId,
  });
  return { child, result: collectOutput(child) };
}

/** Resolves when the agent holds its cluster's current credentials (or joined, in null mode). */
export function agentReady(coordinator: Coordinator, clusterId: string, agentId: string): Promise<void> {
  if (coordinator.hub.readyAgents(clusterId).includes(agentId)) return Promise.resolve();
  return new Promise((resolve) => {
    const onReady = (c: string, a: string): void => {
      if (c !== clusterId || a !== agentId) return;
      coordinator.hub.off('agent-ready', onReady);
      resolve();
    };
    coordinator.hub.on('agent-ready', onReady);
  });
}

/** Asserts that the one agent of a cluster, `legit`, still runs commands: what every refusal test checks afterwards. */
export async function assertLegitStillServed(t: ExecutionContext, coordinator: Coordinator, clusterId: string): Promise<void> {
  const results = await coordinator.run(clusterId, ['sh', '-c', 'echo alive']);
  t.deepEqual(results.map((r) => [r.worker, r.exitCode, r.stdout]), [['legit', 0, 'alive\n']]);
}

/** Call before the agent starts: resolves once it holds the cluster's credentials (or joined, in null mode). */
export function clusterAgentReady(cluster: Cluster, agentId: string): Promise<void> {
  return new Promise((resolve) => {
    cluster.on('agent-ready', (id) => {
      if (id === agentId) resolve();
    });
  });
}

/** `ready`, unless the agent exits first: then a rejection carrying its stderr, rather than a wait until the deadline. */
export function readyUnlessExited(ready: Promise<void>, exited: Promise<ProcessResult>): Promise<void> {
  return Promise.race([ready, exited.then((r) => { throw new Error(`the agent exited (${r.code ?? r.signal}) before it was ready: ${r.stderr}`); })]);
}
