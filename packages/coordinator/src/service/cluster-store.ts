import type { Redis } from 'ioredis';
import { z } from 'zod';
import { awsCredentialsSchema, deliveryModeSchema, openJson, sealJson, type DeliveryMode } from '@credfwd/shared';
import type { CredentialsSpec, CurrentCredentials, RefreshStatusJson } from '../core/index.ts';
import type { RedisKeys } from './redis-keys.ts';

/** What anyone with Redis access may read of a cluster: nothing secret. */
export interface PublicClusterRecord {
  id: string;
  mode: CredentialsSpec['kind'];
  delivery: DeliveryMode;
  region: string | null;
  durationSeconds: number;
  refreshIntervalSeconds: number | null;
  /** Lease length: the cluster is deleted this long after its last renewal. Null: kept until deleted by hand. */
  leaseSeconds: number | null;
  /** SHA-256 of the join token: enough to check proofs, useless to join. */
  verifier: string;
  createdAt: string;
  /** Who created it: under a policy, only they (and the break-glass admin) may act on it. Null before principals existed. */
  principal: string | null;
  /** The role it assumes (role mode); not a secret, and what an operator looks for in CloudTrail. */
  roleArn: string | null;
  /** Canonical scopes its sessions are scoped down to. */
  scopes: string[];
}

/** What is sealed with the state key before it reaches Redis. */
export interface SecretClusterRecord {
  spec: CredentialsSpec;
  environ: Record<string, string>;
}

const publicSchema = z.object({
  id: z.string(),
  mode: z.enum(['forward', 'none', 'role']),
  delivery: deliveryModeSchema,
  region: z.string().nullable(),
  durationSeconds: z.number().int(),
  refreshIntervalSeconds: z.number().int().nullable(),
  // Records written before leases existed have none: they are kept, as they were.
  leaseSeconds: z.number().int().nullable().default(null),
  verifier: z.string(),
  createdAt: z.string(),
  // Records written before governance existed have none of these.
  principal: z.string().nullable().default(null),
  roleArn: z.string().nullable().default(null),
  scopes: z.array(z.string()).default([]),
});
const storedCredentialsSchema = z.object({
  seq: z.number().int(),
  credentials: awsCredentialsSchema,
  expiresAt: z.string(),
  refreshAt: z.string().nullable(),
});

/** What a deletion removed: enough to clean up after the cluster and to log why it went. */
export interface DeletedCluster {
  /** Sequence number of the credentials it held; the key of its pending refresh job. Undefined in null mode. */
  seq: number | undefined;
  leaseSeconds: number | null;
  /** When its lease lapsed (or would have), for leased clusters. */
  leaseExpiredAt: Date | undefined;
}

// Leases are reckoned on Redis's clock, so replicas whose clocks disagree still agree on who lapsed.
const REDIS_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/**
 * Sets a lease to ARGV[2] seconds from now. Returns its expiry, -1 if the
 * cluster is gone, -2 when renewing (ARGV[3] ~= 'create') a cluster that has
 * no lease: whoever deleted it took the lease in the same step.
 */
const LEASE_SCRIPT = `${REDIS_NOW_MS}
if redis.call('HEXISTS', KEYS[1], 'public') == 0 then return -1 end
if ARGV[3] ~= 'create' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return -2 end
local expires = now + tonumber(ARGV[2]) * 1000
redis.call('ZADD', KEYS[2], expires, ARGV[1])
return expires`;

/**
 * Deletes a cluster's hash, set entry and lease in one step, so that of two
 * replicas deleting it (a lapse sweep on each, or a sweep and a DELETE)
 * exactly one gets the answer. With ARGV[2] == 'lapsed' only if its lease has
 * lapsed. Returns false if nothing was deleted, else {public, current, lease score}.
 */
const DELETE_SCRIPT = `${REDIS_NOW_MS}
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if ARGV[2] == 'lapsed' and (not score or tonumber(score) > now) then return false end
local fields = redis.call('HMGET', KEYS[1], 'public', 'current')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('DEL', KEYS[1]) == 0 then return false end
return {fields[1] or '', fields[2] or '', score or ''}`;

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

  /** Registers a cluster with its first credentials (none in null mode) and its refresh status (if refreshed) in one transaction. */
  async create(record: PublicClusterRecord, secret: SecretClusterRecord, current: CurrentCredentials | null, refresh?: RefreshStatusJson): Promise<void> {
    const fields: Record<string, string> = {
      public: JSON.stringify(record),
      secret: await sealJson(this.#stateKey, secret),
    };
    if (current) fields.current = await this.#sealCredentials(current);
    if (refresh) fields.refresh = JSON.stringify(refresh);
    const key = this.#keys.cluster(record.id);
    const multi = this.#redis.multi().hset(key, fields).sadd(this.#keys.clusters, record.id);
    // In the same transaction: a crash must not leave a leased cluster without its lease, kept forever.
    if (record.leaseSeconds !== null) multi.eval(LEASE_SCRIPT, 2, key, this.#keys.leases, record.id, record.leaseSeconds, 'create');
    await multi.exec();
  }

  /** Extends a cluster's lease to `seconds` from now; its new expiry, or undefined if the cluster (or its lease) is gone. */
  async renewLease(clusterId: string, seconds: number): Promise<Date | undefined> {
    const expires = await this.#redis.eval(LEASE_SCRIPT, 2, this.#keys.cluster(clusterId), this.#keys.leases, clusterId, seconds, 'renew') as number;
    return expires > 0 ? new Date(expires) : undefined;
  }

  /** When a leased cluster's lease lapses; undefined for a kept (or deleted) cluster. */
  async leaseExpiry(clusterId: string): Promise<Date | undefined> {
    const score = await this.#redis.zscore(this.#keys.leases, clusterId);
    return score === null ? undefined : new Date(Number(score));
  }

  /** Up to `limit` clusters whose lease has lapsed, by Redis's clock. */
  async lapsedLeases(limit: number): Promise<string[]> {
    const [seconds, micros] = await this.#redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return this.#redis.zrangebyscore(this.#keys.leases, '-inf', now, 'LIMIT', 0, limit);
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

  async current(clusterId: string): Promise<CurrentCredentials | undefined> {
    const jwe = await this.#redis.hget(this.#keys.cluster(clusterId), 'current');
    if (!jwe) return undefined;
    const stored = storedCredentialsSchema.parse(await openJson(this.#stateKey, jwe));
    return { seq: stored.seq, credentials: stored.credentials, expiresAt: new Date(stored.expiresAt), ...(stored.refreshAt ? { refreshAt: new Date(stored.refreshAt) } : {}) };
  }

  /** Stores newer credentials; false when the cluster is gone (deleted meanwhile). */
  async saveCurrent(clusterId: string, current: CurrentCredentials, refresh?: RefreshStatusJson): Promise<boolean> {
    const jwe = await this.#sealCredentials(current);
    // HSET only if the cluster still has its record, so a refresh racing a deletion leaves nothing behind;
    // with the refresh status in the same step, so no reader sees new credentials beside the old status.
    const saved = await this.#redis.eval(
      "if redis.call('HEXISTS', KEYS[1], 'public') == 1 then redis.call('HSET', KEYS[1], 'current', ARGV[1]) if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'refresh', ARGV[2]) end return 1 end return 0",
      1, this.#keys.cluster(clusterId), jwe, refresh ? JSON.stringify(refresh) : '',
    );
    return saved === 1;
  }

  /** A cluster's refresh loop as replicas record it for `show`; nothing once the cluster is gone. */
  async saveRefreshStatus(clusterId: string, status: RefreshStatusJson): Promise<void> {
    await this.#redis.eval(
      "if redis.call('HEXISTS', KEYS[1], 'public') == 1 then redis.call('HSET', KEYS[1], 'refresh', ARGV[1]) end return 0",
      1, this.#keys.cluster(clusterId), JSON.stringify(status),
    );
  }

  async refreshStatus(clusterId: string): Promise<RefreshStatusJson | undefined> {
    const text = await this.#redis.hget(this.#keys.cluster(clusterId), 'refresh');
    return text ? JSON.parse(text) as RefreshStatusJson : undefined;
  }

  /**
   * Removes a cluster with its lease; undefined if there was none (or, with
   * `onlyIfLapsed`, if its lease has not lapsed). Atomic: of concurrent
   * deleters, exactly one gets the answer.
   */
  async delete(clusterId: string, onlyIfLapsed = false): Promise<DeletedCluster | undefined> {
    const removed = await this.#redis.eval(
      DELETE_SCRIPT, 3, this.#keys.cluster(clusterId), this.#keys.clusters, this.#keys.leases, clusterId, onlyIfLapsed ? 'lapsed' : 'any',
    ) as [string, string, string] | null;
    if (!removed) return undefined;
    const [publicText, currentJwe, score] = removed;
    const record = publicText ? publicSchema.parse(JSON.parse(publicText)) : undefined;
    const current = currentJwe ? storedCredentialsSchema.parse(await openJson(this.#stateKey, currentJwe)) : undefined;
    return { seq: current?.seq, leaseSeconds: record?.leaseSeconds ?? null, leaseExpiredAt: score ? new Date(Number(score)) : undefined };
  }

  #sealCredentials(current: CurrentCredentials): Promise<string> {
    return sealJson(this.#stateKey, {
      seq: current.seq,
      credentials: current.credentials,
      expiresAt: current.expiresAt.toISOString(),
      refreshAt: current.refreshAt?.toISOString() ?? null,
    });
  }
}
