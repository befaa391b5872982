import type { Redis } from 'ioredis';
import { z } from 'zod';
import { CredfwdError, openJson, sealJson } from '@credfwd/shared';
import { createSelfSignedIdentity, fromPem, type TlsIdentity } from '../core/index.ts';

const storedSchema = z.object({ cert: z.string(), key: z.string() });

/**
 * The one TLS identity all replicas serve, so one pin in a join string covers
 * every replica: the first replica makes it and stores it in Redis with the
 * private key sealed under the state key; the others, and restarts, load it.
 * SET NX settles a race between replicas starting together.
 */
export async function loadSharedTlsIdentity(redis: Redis, key: string, stateKey: Uint8Array): Promise<TlsIdentity> {
  const existing = await redis.get(key);
  if (existing) return open(existing, stateKey);
  const made = await createSelfSignedIdentity();
  const stored = JSON.stringify({ cert: made.cert, key: await sealJson(stateKey, made.key) });
  if (await redis.set(key, stored, 'NX')) return made;
  const winner = await redis.get(key);
  if (!winner) throw new Error('the shared TLS identity vanished while it was being created');
  return open(winner, stateKey);
}

async function open(text: string, stateKey: Uint8Array): Promise<TlsIdentity> {
  const stored = storedSchema.parse(JSON.parse(text));
  let key: unknown;
  try {
    key = await openJson(stateKey, stored.key);
  } catch (cause) {
    throw new CredfwdError('CONFIG_INVALID', 'the state key does not open the TLS key kept in Redis', 'every replica of a service needs the same CREDFWD_STATE_KEY (or a new --redis-prefix)', { cause });
  }
  if (typeof key !== 'string') throw new Error('the shared TLS key in Redis is not a PEM string');
  return fromPem(stored.cert, key);
}
