import type { Redis } from 'ioredis';
import { errorMessage, type Logger } from '@credfwd/shared';
import type { RedisKeys } from './redis-keys.ts';

/** An agent as the registry lists it, with the replica that holds it. */
export interface RegisteredAgent {
  agentId: string;
  replicaId: string;
  remote: string;
  ackedSeq: number;
}

/** A replica's liveness key lives this long without renewal: a killed replica's agents drop out of listings within it. */
export const PRESENCE_TTL_SECONDS = 6;
const RENEW_MS = 2_000;

/**
 * This replica's entry in Redis: its public address (join strings list every
 * live replica's) and the agents it holds, under a liveness key with a TTL
 * that it renews, so what a killed replica held stops counting by itself.
 */
export class ReplicaPresence {
  readonly replicaId: string;
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #address: string;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { redis: Redis; keys: RedisKeys; replicaId: string; address: string; logger: Logger }) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.replicaId = options.replicaId;
    this.#address = options.address;
    this.#logger = options.logger;
  }

  async start(): Promise<void> {
    await this.#renew();
    this.#timer = setInterval(() => {
      this.#renew().catch((err: unknown) => this.#logger.warn({ reason: errorMessage(err) }, 'could not renew replica presence'));
    }, RENEW_MS);
    this.#timer.unref();
  }

  async agentJoined(clusterId: string, agent: { agentId: string; remote: string; ackedSeq: number }): Promise<void> {
    await this.#redis.hset(this.#keys.replicaAgents(this.replicaId), `${clusterId}/${agent.agentId}`, JSON.stringify({ remote: agent.remote, ackedSeq: agent.ackedSeq }));
  }

  async agentLeft(clusterId: string, agentId: string): Promise<void> {
    await this.#redis.hdel(this.#keys.replicaAgents(this.replicaId), `${clusterId}/${agentId}`);
  }

  /** Live replicas and the address agents dial for each, this one first. */
  async liveReplicas(): Promise<Array<{ replicaId: string; address: string }>> {
    const all = await this.#redis.hgetall(this.#keys.replicas);
    const ids = Object.keys(all);
    const alive = ids.length > 0 ? await this.#redis.mget(ids.map((id) => this.#keys.replicaAlive(id))) : [];
    const dead = ids.filter((_, i) => alive[i] === null);
    // A killed replica never says goodbye; one that is merely slow re-adds itself at its next renewal.
    if (dead.length > 0) await this.#redis.hdel(this.#keys.replicas, ...dead);
    const live = ids.filter((_, i) => alive[i] !== null).map((replicaId) => ({ replicaId, address: all[replicaId] ?? '' }));
    return live.sort((a, b) => Number(b.replicaId === this.replicaId) - Number(a.replicaId === this.replicaId) || a.replicaId.localeCompare(b.replicaId));
  }

  /** Every agent of a cluster on a live replica. */
  async agentsOf(clusterId: string): Promise<RegisteredAgent[]> {
    const found: RegisteredAgent[] = [];
    for (const { replicaId } of await this.liveReplicas()) {
      const entries = await this.#redis.hgetall(this.#keys.replicaAgents(replicaId));
      for (const [field, value] of Object.entries(entries)) {
        const slash = field.indexOf('/');
        if (field.slice(0, slash) !== clusterId) continue;
        const status = JSON.parse(value) as { remote: string; ackedSeq: number };
        found.push({ agentId: field.slice(slash + 1), replicaId, remote: status.remote, ackedSeq: status.ackedSeq });
      }
    }
    return found.sort((a, b) => a.agentId.localeCompare(b.agentId, 'en', { numeric: true }));
  }

  /** Leaves the registry (on a clean shutdown; a killed replica expires instead). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#redis.multi()
      .hdel(this.#keys.replicas, this.replicaId)
      .del(this.#keys.replicaAlive(this.replicaId), this.#keys.replicaAgents(this.replicaId))
      .exec();
  }

  async #renew(): Promise<void> {
    await this.#redis.multi()
      .hset(this.#keys.replicas, this.replicaId, this.#address)
      .set(this.#keys.replicaAlive(this.replicaId), '1', 'EX', PRESENCE_TTL_SECONDS)
      .expire(this.#keys.replicaAgents(this.replicaId), PRESENCE_TTL_SECONDS * 10)
      .exec();
  }
}
