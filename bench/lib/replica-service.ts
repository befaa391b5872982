import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '@credfwd/coordinator';
import type { AckCounts, AckTimes, ReplicaStartAnswer } from '../replica-host.ts';
import { spawnWorker, type Worker } from './children.ts';
import { withDeadline } from './deadline.ts';
import { startRedisServer, type RedisServer } from './redis-server.ts';
import { startStubSts, type StubSts } from './stub-sts.ts';

const HOST = fileURLToPath(new URL('../replica-host.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The role the benchmark cluster names; the stub STS grants any. */
const ROLE_ARN = 'arn:aws:iam::123456789012:role/credfwd-bench';

/** One replica process of the service. */
export interface ReplicaHandle {
  pid: number;
  readyCount(): Promise<number>;
  ackCounts(): Promise<AckCounts>;
  ackTimes(seqs: number[]): Promise<AckTimes>;
}

/** A private Redis, a stub STS and replica processes sharing them, with one role cluster. */
export interface ReplicaService {
  replicas: ReplicaHandle[];
  redisPid: number;
  /** When each mint happened, from the stub STS. */
  mints(): number[];
  /** A secret: it lists every replica's address; for the simulators, over IPC only. */
  joinString: string;
  /** Stops the replicas, the stub STS and Redis. Idempotent. */
  close(): Promise<void>;
}

export interface ReplicaServiceOptions {
  replicas: number;
  refreshIntervalSeconds: number;
}

/**
 * The replicas' own AWS identity, and nothing of the developer's: fake keys
 * (the stub does not check signatures), no config or credentials file, no
 * instance metadata, and STS at the stub.
 */
function replicaEnv(stsUrl: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_ACCESS_KEY_ID: 'AKIABENCHREPLICA0001',
    AWS_SECRET_ACCESS_KEY: 'bench-replica-identity-not-a-secret',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: join(ROOT, '.tmp', 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(ROOT, '.tmp', 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_STS: stsUrl,
  };
}

/**
 * Starts Redis, the stub STS and `options.replicas` replica processes with
 * fresh service secrets (passed over IPC, never printed), then creates one
 * role cluster through the first replica's admin API, once every replica is
 * live, so its join string lists them all. On failure, everything it
 * started is stopped.
 */
export async function startReplicaService(options: ReplicaServiceOptions): Promise<ReplicaService> {
  let redis: RedisServer | undefined;
  let sts: StubSts | undefined;
  const hosts: Worker[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await Promise.all(hosts.map(async (host) => {
        await host.call('stop').catch(() => undefined);
        await host.stop();
      }));
      await sts?.stop();
      await redis?.stop();
    })();
    return closing;
  };
  try {
    redis = await startRedisServer();
    sts = await startStubSts();
    const secrets = { stateKey: randomBytes(32).toString('base64url'), adminToken: randomBytes(32).toString('base64url') };
    const params = { redisUrl: redis.url, redisPrefix: 'credfwd-bench', ...secrets };
    const env = replicaEnv(sts.url);
    const startOne = (): Promise<ReplicaStartAnswer> => {
      const host = spawnWorker(HOST, { env });
      hosts.push(host);
      return withDeadline(host.call<ReplicaStartAnswer>('start', params), 30_000, 'replica start');
    };
    // One first, so the others load the TLS identity it made rather than racing to make their own.
    const first = await startOne();
    await Promise.all(Array.from({ length: options.replicas - 1 }, startOne));
    const admin = new AdminClient({ url: first.url, pin: first.pin, adminToken: secrets.adminToken });
    const cluster = await withDeadline(admin.createCluster({
      credentials: `role:${ROLE_ARN}`,
      refreshIntervalSeconds: options.refreshIntervalSeconds,
      // Nothing here renews a lease, and a run may outlast one; the private Redis goes at close anyway.
      leaseSeconds: null,
    }), 30_000, 'cluster creation');
    const stub = sts;
    return {
      replicas: hosts.map((host) => ({
        pid: host.child.pid ?? 0,
        readyCount: () => host.call<number>('readyCount', cluster.id),
        ackCounts: () => host.call<AckCounts>('ackCounts'),
        ackTimes: (seqs) => host.call<AckTimes>('ackTimes', seqs),
      })),
      redisPid: redis.pid,
      mints: () => stub.mints(),
      joinString: cluster.joinString,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
