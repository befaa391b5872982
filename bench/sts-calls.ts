import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { StsCounter } from '../tests/helpers/sts-counter.ts';
import { forEachLimited } from './lib/pool.ts';
import { startSimCluster } from './lib/sim-cluster.ts';

/** A fake launcher for moto, which accepts any signature: no AWS account is involved. */
export const MOTO_LAUNCHER = { accessKeyId: 'AKIABENCHLAUNCHER001', secretAccessKey: 'bench-launcher-secret-for-moto-only' };
export const BENCH_ROLE_ARN = 'arn:aws:iam::123456789012:role/bench';

/** STS's AssumeRole quota per account and region, which cannot be raised. */
export const STS_REQUESTS_PER_SECOND = 600;

/** Requests in flight at once in the baseline: workers calling at once, without drowning single-threaded moto. */
const BASELINE_CONCURRENCY = 32;

export interface StsSide {
  calls: number;
  seconds: number;
  errors: number;
}

export interface StsResult {
  workers: number;
  baseline: StsSide;
  credfwd: StsSide;
}

/**
 * Today's way: each worker assumes the role itself, as per-node instance
 * roles or SDK-side role assumption do. One fresh client per worker, as
 * separate machines would have.
 */
async function baseline(workers: number, counter: StsCounter): Promise<StsSide> {
  counter.reset();
  let errors = 0;
  const started = performance.now();
  const worker = async (i: number): Promise<void> => {
    const client = new STSClient({ region: 'us-east-1', endpoint: counter.url, credentials: MOTO_LAUNCHER, maxAttempts: 1 });
    try {
      const out = await client.send(new AssumeRoleCommand({ RoleArn: BENCH_ROLE_ARN, RoleSessionName: `worker-${i}`, DurationSeconds: 3600 }));
      if (!out.Credentials?.AccessKeyId) errors++;
    } catch {
      errors++;
    } finally {
      client.destroy();
    }
  };
  await forEachLimited(workers, BASELINE_CONCURRENCY, worker);
  return { calls: counter.count('AssumeRole'), seconds: (performance.now() - started) / 1000, errors };
}

/** credfwd: one refresh of a role-mode cluster of `workers` simulated agents, from mint start to the last ack. */
async function credfwd(workers: number, counter: StsCounter): Promise<StsSide> {
  const cluster = await startSimCluster({
    agents: workers,
    credentials: { kind: 'role', roleArn: BENCH_ROLE_ARN, ...MOTO_LAUNCHER },
    refreshIntervalSeconds: 3,
    env: { ...process.env, AWS_ENDPOINT_URL_STS: counter.url },
    connectTimeoutMs: 60_000 + workers * 15,
  });
  try {
    counter.reset();
    const { rounds } = await cluster.measure({ rounds: 1, expected: cluster.agents, timeoutMs: 60_000 });
    const calls = counter.count('AssumeRole');
    const latencies = rounds[0]?.latencies ?? [];
    return {
      calls,
      seconds: latencies.length > 0 ? Math.max(...latencies) / 1000 : Number.NaN,
      errors: cluster.agents - latencies.length + cluster.failed,
    };
  } finally {
    await cluster.close();
  }
}

/** Both ways of giving `workers` workers fresh credentials, against the same moto in the same run. */
export async function runStsCalls(workers: number, counter: StsCounter): Promise<StsResult> {
  return { workers, baseline: await baseline(workers, counter), credfwd: await credfwd(workers, counter) };
}
