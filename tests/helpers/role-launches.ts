import { launchCluster, type Cluster, type LaunchOptions } from '@credfwd/coordinator';
import { capturedLogger } from './captured-logger.ts';
import { createIamUser, startMoto, type AwsKeys, type Moto } from './moto.ts';

/**
 * Starts moto and makes an IAM user of it the launcher of every cluster this
 * test file launches, through the SDK's default chain (each ava test file
 * runs in a process of its own, so its environment is the file's alone).
 */
export async function startMotoAsLauncher(userName: string): Promise<Moto> {
  const moto = await startMoto();
  actAsLauncher(moto, await createIamUser(moto, userName));
  return moto;
}

/** Makes `keys` this process's AWS identity, with every STS call going to `moto`. */
export function actAsLauncher(moto: Moto, keys: AwsKeys): void {
  process.env.AWS_ACCESS_KEY_ID = keys.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = keys.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
}

interface Teardowns {
  teardown(fn: () => Promise<void>): void;
}

/**
 * Launches a role cluster with one local worker against `moto` (workloads
 * reach it through AWS_ENDPOINT_URL), closed when the test ends.
 */
export async function launchRoleCluster(t: Teardowns, moto: Moto, options: Partial<LaunchOptions> & Pick<LaunchOptions, 'credentials'>): Promise<Cluster> {
  const cluster = await launchCluster({
    workers: 1,
    region: 'us-east-1',
    environ: { AWS_ENDPOINT_URL: moto.url },
    logger: capturedLogger().logger,
    ...options,
  });
  t.teardown(() => cluster.close());
  return cluster;
}
