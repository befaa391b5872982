import type { Redis } from 'ioredis';
import { z } from 'zod';
import { awsCredentialsSchema, deliveryModeSchema, openJson, sealJson, type AwsCredentials, type DeliveryMode } from '@credfwd/shared';
import type { CredentialsSpec } from './credentials-spec.ts';
import type { RedisKeys } from './redis-keys.ts';
import type { RefreshError, RefreshState } from './refresh-scheduler.ts';

/** What anyone with Redis access may read of a cluster: nothing secret. */
export interface PublicClusterRecord {
  id: string;
  mode: CredentialsSpec['kind'];
  delivery: DeliveryMode;
  region: string | null;
  durationSeconds: number;
  refreshIntervalSeconds: number | null;
  /** SHA-256 of the join token: enough to check proofs, useless to join. */
  verifier: string;
  createdAt: string;
}

/** What is sealed with the state key before it reaches Redis. */
export interface SecretClusterRecord {
  spec: CredentialsSpec;
  environ: Record<string, string>;
}

/** A cluster's current credentials, as every replica pushes them. */
export interface StoredCredentials {
  seq: number;
  credentials: AwsCredentials;
  expiresAt: Date;
  refreshAt: Date | null;
}

/** A cluster's refresh loop as replicas record it for `show`. */
export interface StoredRefreshStatus {
  state: RefreshState | 'none';
  lastRefreshAt: string | null;
  nextRefreshAt: string | null;
  consecutiveFailures: number;
  lastError: Omit<RefreshError, 'at'> & { at: string } | null;
}

const publicSchema = z.object({
  id: z.string(),
  mode: z.enum(['forward', 'none', 'role']),
  delivery: deliveryModeSchema,
  region: z.string().nullable(),
  durationSeconds: z.number().int(),
  refreshIntervalSeconds: z.number().int().nullable(),
  verifier: z.string(),
  createdAt: z.string(),
});
const storedCredentialsSchema = z.object({
  seq: z.number().int(),
  credentials: awsCredentialsSchema,
  expiresAt: z.string(),
  refreshAt: z.string().nullable(),
});

/**
 * The cluster registry in Redis. Public parts are plain JSON; environ, the
 * credentials spec and every credential are sealed (JWE dir/A256GCM) with
 * the state key, which Redis never sees.
 */
export class ClusterStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #stateKey: Uint8Array;

  constructor(redis: Redis, keys: RedisKeys, stateKey: Uint8Array) {
    this.#redis = redis;
    this.#keys = keys;
    this.#stateKey = stateKey;
  }

  /** A fresh sequence number, unique across replicas. */
  async nextSeq(): Promise<number> {
    return this.#redis.incr(this.#keys.seq);
  }

  /** Registers a cluster with its first credentials (none in null mode) in one transaction. */
  async create(record: PublicClusterRecord, secret: SecretClusterRecord, current: StoredCredentials | null): Promise<void> {
    const fields: Record<string, string> = {
      public: JSON.stringify(record),
      secret: await sealJson(this.#stateKey, secret),
    };
    if (current) fields.current = await this.#sealCredentials(current);
    await this.#redis.multi().hset(this.#keys.cluster(record.id), fields).sadd(this.#keys.clusters, record.id).exec();
  }

  async ids(): Promise<string[]> {
    return (await this.#redis.smembers(this.#keys.clusters)).sort();
  }

  async count(): Promise<number> {
    return this.#redis.scard(this.#keys.clusters);
  }

  /** A cluster's public record, or undefined if it does not exist. */
  async get(clusterId: string): Promise<PublicClusterRecord | undefined> {
    const text = await this.#redis.hget(this.#keys.cluster(clusterId), 'public');
    return text ? publicSchema.parse(JSON.parse(text)) as PublicClusterRecord : undefined;
  }

  async secret(clusterId: string): Promise<SecretClusterRecord | undefined> {
    const jwe = await this.#redis.hget(this.#keys.cluster(clusterId), 'secret');
    return jwe ? await openJson(this.#stateKey, jwe) as SecretClusterRecord : undefined;
  }

  async current(clusterId: string): Promise<StoredCredentials | undefined> {
    const jwe = await this.#redis.hget(this.#keys.cluster(clusterId), 'current');
    if (!jwe) return undefined;
    const stored = storedCredentialsSchema.parse(await openJson(this.#stateKey, jwe));
    return { ...stored, expiresAt: new Date(stored.expiresAt), refreshAt: stored.refreshAt ? new Date(stored.refreshAt) : null };
  }

  /** Stores newer credentials; false when the cluster is gone (deleted meanwhile). */
  async saveCurrent(clusterId: string, current: StoredCredentials): Promise<boolean> {
    const jwe = await this.#sealCredentials(current);
    // HSET only if the cluster still has its record, so a refresh racing a deletion leaves nothing behind.
    const saved = await this.#redis.eval(
      "if redis.call('HEXISTS', KEYS[1], 'public') == 1 then redis.call('HSET', KEYS[1], 'current', ARGV[1]) return 1 end return 0",
      1, this.#keys.cluster(clusterId), jwe,
    );
    return saved === 1;
  }

  async saveRefreshStatus(clusterId: string, status: StoredRefreshStatus): Promise<void> {
    await this.#redis.eval(
      "if redis.call('HEXISTS', KEYS[1], 'public') == 1 then redis.call('HSET', KEYS[1], 'refresh', ARGV[1]) end return 0",
      1, this.#keys.cluster(clusterId), JSON.stringify(status),
    );
  }

  async refreshStatus(clusterId: string): Promise<StoredRefreshStatus | undefined> {
    const text = await this.#redis.hget(this.#keys.cluster(clusterId), 'refresh');
    return text ? JSON.parse(text) as StoredRefreshStatus : undefined;
  }

  /** Removes a cluster; false if there was none. */
  async delete(clusterId: string): Promise<boolean> {
    const results = await this.#redis.multi().del(this.#keys.cluster(clusterId)).srem(this.#keys.clusters, clusterId).exec();
    return results?.[0]?.[1] === 1;
  }

  #sealCredentials(current: StoredCredentials): Promise<string> {
    return sealJson(this.#stateKey, {
      seq: current.seq,
      credentials: current.credentials,
      expiresAt: current.expiresAt.toISOString(),
      refreshAt: current.refreshAt?.toISOString() ?? null,
    });
  }
}
