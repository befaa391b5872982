import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { AdminClient } from '@credfwd/coordinator';
import { CREDFWD_BIN, isolatedEnv } from './credfwd-cli.ts';
import { freePort } from './free-port.ts';
import { prefixFor } from './redis.ts';
import { startService, type Service } from './service.ts';

/** The secrets every replica of one test service shares. */
export interface ServiceSecrets {
  stateKey: string;
  adminToken: string;
}

/** Fresh secrets for one service: a 32-byte state key and a 32-byte admin token. */
export function newServiceSecrets(): ServiceSecrets {
  return { stateKey: randomBytes(32).toString('base64url'), adminToken: randomBytes(32).toString('base64url') };
}

/** One `credfwd serve` process. */
export interface ReplicaProcess {
  service: Service;
  /** `https://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, as join strings list it. */
  address: string;
  /** Hex SHA-256 of the service certificate, as `credfwd serve` prints it. */
  pin: string;
  replicaId: string;
  admin: AdminClient;
  /** SIGKILL, as a crashed host would; resolves once the process is gone. */
  kill(): Promise<void>;
}

/** Replicas of one test service, on a private Redis prefix. */
export interface ReplicaSet {
  prefix: string;
  secrets: ServiceSecrets;
  replicas: ReplicaProcess[];
}

/** `count` replicas of `credfwd serve` on a prefix of the test's own, minting with `env`'s identity; killed at teardown. */
export async function startReplicaSet(t: ExecutionContext, redisUrl: string, count: number, env: Record<string, string>): Promise<ReplicaSet> {
  const prefix = prefixFor(t.title).slice(0, -1);
  const secrets = newServiceSecrets();
  // One replica first, so the others find the TLS identity it made rather than racing to make one.
  const first = await startReplica({ redisUrl, prefix, secrets, env });
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => startReplica({ redisUrl, prefix, secrets, env })));
  const replicas = [first, ...rest];
  t.teardown(() => Promise.all(replicas.map((r) => r.kill())));
  return { prefix, secrets, replicas };
}

export interface ReplicaSpec {
  redisUrl: string;
  prefix: string;
  secrets: ServiceSecrets;
  /** The replica's own environment on top of an isolated one: its AWS identity and STS endpoint. */
  env?: Record<string, string>;
}

/**
 * Starts `credfwd serve` through the bin on a free port, secrets in the
 * environment (never argv), and waits for the pin line it prints.
 */
export async function startReplica(spec: ReplicaSpec): Promise<ReplicaProcess> {
  const port = await freePort();
  const service = await startService({
    command: process.execPath,
    args: ['--', CREDFWD_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--redis', spec.redisUrl, '--redis-prefix', spec.prefix],
    env: isolatedEnv({
      CREDFWD_STATE_KEY: spec.secrets.stateKey,
      CREDFWD_ADMIN_TOKEN: spec.secrets.adminToken,
      CREDFWD_LOG_LEVEL: 'info',
      ...spec.env,
    }),
    ready: /^pin sha256:[0-9a-f]{64}$/,
    graceMs: 2_000,
  });
  const pin = service.readyLine.slice('pin sha256:'.length);
  const url = `https://127.0.0.1:${port}`;
  const admin = new AdminClient({ url, pin, adminToken: spec.secrets.adminToken });
  const health = await admin.request('GET', '/healthz');
  const replicaId = (health.body as { replica: string }).replica;
  return {
    service,
    url,
    address: `127.0.0.1:${port}`,
    pin,
    replicaId,
    admin,
    kill: async () => {
      if (service.child.exitCode !== null || service.child.signalCode !== null) return;
      const gone = new Promise((resolve) => service.child.once('exit', resolve));
      service.child.kill('SIGKILL');
      await gone;
      await service.stop();
    },
  };
}

/** Every key under a prefix with its value, whatever its type, as text: what someone reading Redis would see. */
export async function dumpRedis(url: string, prefix: string): Promise<Map<string, string>> {
  const redis = new Redis(url);
  try {
    const dump = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) dump.set(key, await readAnyType(redis, key));
    } while (cursor !== '0');
    return dump;
  } finally {
    redis.disconnect();
  }
}

async function readAnyType(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  switch (type) {
    case 'string': return (await redis.get(key)) ?? '';
    case 'hash': return JSON.stringify(await redis.hgetall(key));
    case 'list': return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set': return JSON.stringify(await redis.smembers(key));
    case 'zset': return JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'));
    case 'stream': return JSON.stringify(await redis.xrange(key, '-', '+'));
    case 'none': return '';
    default: throw new Error(`key ${key} has type ${type}, which the dump does not read`);
  }
}

/** Polls `probe` until it returns a value that is not undefined, or fails at the deadline: a bound, not a wait. */
export async function eventually<T>(probe: () => Promise<T | undefined>, deadlineMs: number, what: string): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
