export { defaultAgentProgram, type AgentProgram } from './agent-program.ts';
export { AGENT_BUNDLE_FILE_NAME, writeAgentBundle, type WrittenAgentBundle } from './agent-bundle.ts';
export type { AgentLaunchRequest, LaunchBackend, LaunchedAgents, WorkerPlacement } from './launch-backend.ts';
export { LOCAL_HOST, LocalBackend, type LocalBackendOptions } from './local/index.ts';
export { SshBackend, type FailedHost, type HostReport, type SshAgents, type SshBackendOptions } from './ssh/index.ts';
export { waitForWorkers, type LaunchProgress, type WaitOptions, type WorkerReadiness } from './wait-for-workers.ts';
export { launchBackendFor, type WorkerPlacementOptions } from './worker-placement.ts';
