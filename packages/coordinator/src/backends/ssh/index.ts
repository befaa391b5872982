export { SshBackend, type SshBackendOptions } from './ssh-backend.ts';
export type { FailedHost, HostReport, SshAgents } from './ssh-agents.ts';
