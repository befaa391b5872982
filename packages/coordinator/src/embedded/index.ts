export { Coordinator, type ClusterRecord, type ClusterStatus, type CoordinatorEvents, type CoordinatorOptions } from './coordinator.ts';
export { launchCluster, type Cluster, type ClusterEvents, type LaunchOptions } from './launch-cluster.ts';
