import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { startService } from './service.ts';

const run = promisify(execFile);

/** A Redis server for one test file. */
export interface TestRedis {
  /** `redis://HOST:PORT`, for ioredis or REDIS_URL. */
  url: string;
  /** Stops a server this helper started; a no-op for a REDIS_URL server, which the test does not own. */
  stop(): Promise<void>;
}

/** True when a Docker engine answers within a couple of seconds. */
async function dockerAnswers(): Promise<boolean> {
  try {
    await run('docker', ['info'], { timeout: 2_000 });
    return true;
  } catch {
    return false;
  }
}

async function startContainer(): Promise<TestRedis> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('redis:7')
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  let stopping: Promise<unknown> | undefined;
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    stop: async () => { await (stopping ??= container.stop()); },
  };
}

/** Where a private server keeps its append-only file, for tests that restart Redis and expect its data back. */
export interface PersistenceOptions {
  port: number;
  /** Directory of the append-only file. */
  dir: string;
}

/**
 * A private `redis-server` on 127.0.0.1: nothing on disk by default; with
 * `persistence`, an append-only file in its directory on the given port, so
 * a server started again there comes back with the same data.
 */
export async function startPrivateServer(persistence?: PersistenceOptions): Promise<TestRedis> {
  const port = persistence?.port ?? await freePort();
  const storage = persistence
    ? ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', persistence.dir]
    : ['--save', '', '--appendonly', 'no'];
  const service = await startService({
    command: 'redis-server',
    // In the foreground, and reachable from this machine only.
    args: ['--port', String(port), '--bind', '127.0.0.1', ...storage, '--daemonize', 'no'],
    ready: /Ready to accept connections/,
  });
  return { url: `redis://127.0.0.1:${port}`, stop: service.stop };
}

/**
 * A Redis server, in TESTING.md's order of preference: `REDIS_URL` when set
 * (shared, so keys must carry a {@link prefixFor} prefix), a testcontainers
 * Redis when a Docker engine answers, else a private `redis-server` on a free
 * port. `env` is where REDIS_URL is read from.
 */
export async function startRedis(env: NodeJS.ProcessEnv = process.env): Promise<TestRedis> {
  const shared = env.REDIS_URL;
  if (shared) return { url: shared, stop: async () => {} };
  return (await dockerAnswers()) ? startContainer() : startPrivateServer();
}

/** A key prefix no other test, run or developer shares: `credfwd-test:<title>:<random>:`. */
export function prefixFor(testTitle: string): string {
  const slug = testTitle.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40).replace(/^-|-$/g, '');
  return `credfwd-test:${slug}:${randomUUID()}:`;
}
