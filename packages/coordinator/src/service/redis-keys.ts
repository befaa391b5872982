/**
 * Names of every Redis key and channel a replica uses, all under one prefix
 * (`--redis-prefix`), so several services or tests can share a server.
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** The shared TLS certificate and its sealed private key. */
  get tls(): string { return `${this.prefix}:tls`; }
  /** Set of cluster ids. */
  get clusters(): string { return `${this.prefix}:clusters`; }
  /** Hash of one cluster: public record, sealed secrets, sealed current credentials, refresh status. */
  cluster(clusterId: string): string { return `${this.prefix}:cluster:${clusterId}`; }
  /** Sorted set of leased cluster ids, scored by lease expiry (ms since the epoch, Redis's clock); kept clusters are not in it. */
  get leases(): string { return `${this.prefix}:leases`; }
  /** Counter behind every credentials sequence number. */
  get seq(): string { return `${this.prefix}:seq`; }
  /** Hash of replica id to its public address. */
  get replicas(): string { return `${this.prefix}:replicas`; }
  /** Expires unless the replica keeps it alive: a killed replica drops out. */
  replicaAlive(replicaId: string): string { return `${this.prefix}:replica:${replicaId}:alive`; }
  /** Hash of `clusterId/agentId` to the agent's status, for the agents one replica holds. */
  replicaAgents(replicaId: string): string { return `${this.prefix}:replica:${replicaId}:agents`; }
  /** Pub/sub channel between replicas. */
  get events(): string { return `${this.prefix}:events`; }
  /** BullMQ's own prefix. */
  get bull(): string { return `${this.prefix}:bull`; }
}
