export { startAgent, type Agent, type AgentEnd, type AgentOptions } from './start-agent.ts';
export { firstAddressIndex } from './connector.ts';
export type { Clock } from './clock.ts';
export type { CredentialsSummary } from './credential-store.ts';
export type { ReconnectTimerOptions } from './reconnect-timer.ts';
