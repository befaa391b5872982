import { freePort } from '../../tests/helpers/free-port.ts';
import { spawnTracked } from './children.ts';
import { withDeadline } from './deadline.ts';

/** A private `redis-server` a benchmark started, from {@link startRedisServer}. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  pid: number;
  /** SIGTERM, SIGKILL after a grace; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

const READY = 'Ready to accept connections';

/**
 * Starts `redis-server` on a free port of 127.0.0.1, in the foreground and
 * with nothing on disk, and resolves once it accepts connections. It is a
 * tracked child, so `killAll` stops it if the run is cut short. Never
 * REDIS_URL: the benchmark must not write to, or be slowed by, a shared Redis.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const server = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = server.child.stdout;
  if (!stdout) throw new Error('redis-server has no stdout');
  const ready = new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (chunk: string): void => {
      seen = (seen + chunk).slice(-4096);
      if (seen.includes(READY)) {
        // From here on its log is only drained, so a full pipe never blocks it.
        stdout.off('data', onData);
        stdout.resume();
        resolve();
      }
    };
    stdout.setEncoding('utf8').on('data', onData);
    void server.exited.then(() => {
      const why = server.child.pid === undefined ? 'could not be started (is redis-server on PATH?)' : `exited before it was ready: ${(seen + server.stderrTail()).trim().split('\n').slice(-3).join(' | ')}`;
      reject(new Error(`redis-server ${why}`));
    });
  });
  try {
    await withDeadline(ready, 10_000, 'redis-server start');
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, pid: server.child.pid ?? 0, stop: () => server.stop() };
}
