import type { JoinInfo } from '@credfwd/shared';
import { startAgent, type Agent, type AgentOptions } from '../../../packages/worker-agent/src/index.ts';
import { capturedLogger } from '../../helpers/captured-logger.ts';
import { ProtocolPeer, type ProtocolPeerOptions, type TlsIdentity } from './protocol-peer.ts';

/** What a test using these fixtures keeps in its context, for its afterEach hook to close. */
export interface AgentFixtureContext {
  tls: TlsIdentity;
  peers: ProtocolPeer[];
  agents: Agent[];
}

/** An agent whose log a test reads back. */
export type TestAgent = Agent & { logs(): string; waitForLog(pattern: RegExp): Promise<string> };

/** Starts a test coordinator with the file's TLS identity. */
export async function startPeer(t: { context: AgentFixtureContext }, options: Partial<ProtocolPeerOptions> = {}): Promise<ProtocolPeer> {
  const started = await ProtocolPeer.start({ tls: t.context.tls, ...options });
  t.context.peers.push(started);
  return started;
}

/** Starts agent `agent-1` with PATH as its whole base environment. */
export function startTestAgent(t: { context: AgentFixtureContext }, join: JoinInfo, options: Partial<AgentOptions> = {}): TestAgent {
  const log = capturedLogger();
  const started = startAgent({ join, agentId: 'agent-1', logger: log.logger, baseEnv: { PATH: process.env.PATH }, ...options });
  t.context.agents.push(started);
  return Object.assign(started, { logs: log.text, waitForLog: log.waitFor });
}

/** Closes every agent, then every peer, of a test. */
export async function closeFixtures(context: AgentFixtureContext): Promise<void> {
  await Promise.all(context.agents.map((agent) => agent.close()));
  await Promise.all(context.peers.map((peer) => peer.close()));
}
