import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { launchCluster } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import type { Moto } from '../tests/helpers/moto.ts';
import type { LoadAnswer, LoadParams } from './load-gen.ts';
import { spawnWorker } from './lib/children.ts';
import { withDeadline } from './lib/deadline.ts';
import { BENCH_ROLE_ARN, MOTO_LAUNCHER } from './sts-calls.ts';

const LOAD_GEN = fileURLToPath(new URL('./load-gen.ts', import.meta.url));

export interface EndpointLoad {
  connections: number;
  warmupMs: number;
  durationMs: number;
}

export interface EndpointResult {
  load: EndpointLoad;
  credfwd: LoadAnswer;
  /** One connection with the right token while the other connections flood the endpoint with a wrong one. */
  duringFlood: { legitimate: LoadAnswer; flood: LoadAnswer };
  /** The same load on moto's EC2 instance-metadata credentials, what an instance profile gives. */
  imds: LoadAnswer;
}

/** Where moto serves the instance profile's credentials (IMDSv1 GET, as TESTING.md describes). */
export const MOTO_IMDS_PATH = '/latest/meta-data/iam/security-credentials/default-role';

/** One load run from a generator process of its own, bounded by the run's length plus a margin. */
export async function loadOnce(params: LoadParams): Promise<LoadAnswer> {
  const generator = spawnWorker(LOAD_GEN);
  try {
    return await withDeadline(generator.call<LoadAnswer>('load', params), params.warmupMs + params.durationMs + 30_000, `load on ${new URL(params.url).pathname}`);
  } finally {
    await generator.stop();
  }
}

/**
 * Loads a real agent's credentials endpoint (one local worker, endpoint
 * delivery, launched against moto) and moto's instance-metadata endpoint
 * the same way, one after the other.
 */
export async function runEndpoint(moto: Moto, load: EndpointLoad): Promise<EndpointResult> {
  const cluster = await launchCluster({
    workers: 1,
    credentials: { roleArn: BENCH_ROLE_ARN },
    delivery: 'endpoint',
    region: 'us-east-1',
    launcher: async () => MOTO_LAUNCHER,
    logger: createLogger({ name: 'bench-endpoint', level: 'warn' }),
  });
  try {
    const [where] = await cluster.run(['sh', '-c', 'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"']);
    const [url, tokenFile] = (where?.stdout ?? '').trim().split(' ');
    if (!url || !tokenFile) throw new Error('the workload saw no credentials endpoint');
    // Read once, as a client would cache it for a burst; the endpoint itself re-reads it on every request.
    const token = await readFile(tokenFile, 'utf8');
    const credfwd = await loadOnce({ url, headers: { Authorization: token }, ...load });
    const [legitimate, flood] = await Promise.all([
      loadOnce({ url, headers: { Authorization: token }, ...load, connections: 1 }),
      loadOnce({ url, headers: { Authorization: 'not-the-token' }, ...load, connections: Math.max(1, load.connections - 1) }),
    ]);
    const imds = await loadOnce({ url: `${moto.url}${MOTO_IMDS_PATH}`, headers: {}, ...load });
    return { load, credfwd, duringFlood: { legitimate, flood }, imds };
  } finally {
    await cluster.close();
  }
}
