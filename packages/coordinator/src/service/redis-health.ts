import type { Redis } from 'ioredis';
import { CredfwdError, errorMessage } from '@credfwd/shared';

/** How long `/healthz` waits for Redis to answer a PING. */
const HEALTH_PING_MS = 1_000;

/** True when Redis answers a PING in time. */
export async function redisReachable(redis: Redis): Promise<boolean> {
  if (redis.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('PING timed out')), HEALTH_PING_MS); }),
    ]);
    return answer === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The error a replica that cannot reach Redis at start-up fails with. */
export function redisUnavailable(url: string, cause: unknown): CredfwdError {
  const { host, port } = new URL(url);
  return new CredfwdError('REDIS_UNAVAILABLE', `cannot reach Redis at ${host}:${port || 6379}: ${errorMessage(cause)}`, 'check --redis / REDIS_URL and that Redis is running', { cause });
}
