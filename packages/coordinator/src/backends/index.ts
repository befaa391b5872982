export { defaultAgentProgram, type AgentProgram } from './agent-program.ts';
export type { AgentLaunchRequest, LaunchBackend, LaunchedAgents, WorkerPlacement } from './launch-backend.ts';
export { LOCAL_HOST, LocalBackend, type LocalBackendOptions } from './local/index.ts';
export { waitForWorkers, type WaitOptions, type WorkerReadiness } from './wait-for-workers.ts';
