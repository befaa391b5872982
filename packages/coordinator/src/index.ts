export { launchCluster, type Cluster, type ClusterEvents, type LaunchOptions } from './embedded/index.ts';
export { Coordinator, type ClusterRecord, type ClusterStatus, type CoordinatorEvents, type CoordinatorOptions } from './embedded/index.ts';
export {
  DEFAULT_ADMISSION_LIMITS,
  DEFAULT_LEASE_SECONDS,
  MAX_LEASE_SECONDS,
  MIN_LEASE_SECONDS,
  createSelfSignedIdentity,
  fromPem,
  parseCredentialsOption,
  pinOf,
  type AdmissionLimits,
  type AgentStatus,
  type ClusterHandle,
  type ClusterOptions,
  type CreateClusterRequest,
  type CredentialsOption,
  type CredentialsSpec,
  type OutputListener,
  type RefreshError,
  type RefreshState,
  type RefreshStatus,
  type RunOptions,
  type RunRequest,
  type TlsIdentity,
  type WorkerResult,
} from './core/index.ts';
export { defaultAgentProgram, LocalBackend, type AgentLaunchRequest, type AgentProgram, type LaunchBackend, type LaunchedAgents, type LocalBackendOptions, type WorkerPlacement } from './backends/index.ts';
export { AdminClient, type AdminAnswer, type AdminClientOptions, type ClusterLease, type CreatedCluster } from './client/index.ts';
export { CredfwdError, isCredfwdError, type ErrorCode, type OnRefresh } from '@credfwd/shared';
