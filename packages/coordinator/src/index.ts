export { launchCluster, type Cluster, type ClusterEvents, type LaunchOptions } from './launch-cluster.ts';
export { Coordinator, type ClusterOptions, type ClusterRecord, type ClusterStatus, type CoordinatorEvents, type CoordinatorOptions } from './coordinator.ts';
export type { RefreshError, RefreshState, RefreshStatus } from './refresh-scheduler.ts';
export { parseCredentialsOption, type CredentialsOption, type CredentialsSpec } from './credentials-spec.ts';
export type { WorkerResult, OutputListener } from './task-dispatch.ts';
export { DEFAULT_ADMISSION_LIMITS, type AdmissionLimits, type RunOptions, type AgentStatus } from './agent-hub.ts';
export { createSelfSignedIdentity, fromPem, pinOf, type TlsIdentity } from './tls-identity.ts';
export { CredfwdError, isCredfwdError, type ErrorCode, type OnRefresh } from '@credfwd/shared';
