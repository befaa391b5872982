export { Replica, type ReplicaOptions } from './replica.ts';
export { loadReplicaSecrets, type ReplicaSecrets } from './replica-secrets.ts';
