export { AdminClient, type AdminAnswer, type AdminClientOptions, type ClusterLease, type CreatedCluster } from './admin-client.ts';
export { launchRemoteCluster, type RemoteCluster, type RemoteLaunchOptions } from './remote-launch.ts';
