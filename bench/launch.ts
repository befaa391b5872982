import { launchCluster } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import { BENCH_ROLE_ARN, MOTO_LAUNCHER } from './sts-calls.ts';

export interface LaunchResult {
  workers: number;
  /** `launchCluster` called to the first worker holding credentials. */
  firstReadySeconds: number;
  /** `launchCluster` called to it resolving: every worker holds credentials. */
  allReadySeconds: number;
}

/**
 * Times `launchCluster` with local workers (real `credfwd-agent` processes)
 * in role mode against moto: coordinator start, one AssumeRole, agent
 * start-up, handshakes and first pushes.
 */
export async function runLaunch(workers: number): Promise<LaunchResult> {
  const started = performance.now();
  let firstReady = Number.NaN;
  const cluster = await launchCluster({
    workers,
    credentials: { roleArn: BENCH_ROLE_ARN },
    region: 'us-east-1',
    launcher: async () => MOTO_LAUNCHER,
    logger: createLogger({ name: 'bench-launch', level: 'warn' }),
    readyTimeoutMs: 120_000,
    onProgress: (ready) => {
      if (ready > 0 && Number.isNaN(firstReady)) firstReady = performance.now();
    },
  });
  const allReady = performance.now();
  await cluster.close();
  return { workers, firstReadySeconds: (firstReady - started) / 1000, allReadySeconds: (allReady - started) / 1000 };
}
