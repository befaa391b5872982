/**
 * The agent's instance metadata endpoint (imds delivery) under load, beside
 * its container-credentials endpoint (endpoint delivery) and moto's instance
 * metadata, in the same run and with the same load (issue 14, item 6).
 * bench/run.ts calls {@link runImdsEndpoint}; {@link imdsEndpointSection}
 * renders its table for BENCHMARKS.md.
 */
import { readFile } from 'node:fs/promises';
import { launchCluster, type Cluster } from '@credfwd/coordinator';
import { createLogger } from '@credfwd/shared';
import type { Moto } from '../tests/helpers/moto.ts';
import { loadOnce, MOTO_IMDS_PATH, type EndpointLoad } from './endpoint.ts';
import type { LoadAnswer } from './load-gen.ts';
import { BENCH_ROLE_ARN, MOTO_LAUNCHER } from './sts-calls.ts';

export interface ImdsEndpointResult {
  load: EndpointLoad;
  /** credfwd's IMDSv2 endpoint: one session token for the run, as SDKs cache theirs for 6 hours. */
  imds: LoadAnswer;
  /** credfwd's container-credentials endpoint, the same agent build. */
  container: LoadAnswer;
  /** moto's instance metadata. */
  moto: LoadAnswer;
}

async function withCluster<T>(delivery: 'imds' | 'endpoint', use: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = await launchCluster({
    workers: 1,
    credentials: { roleArn: BENCH_ROLE_ARN },
    delivery,
    region: 'us-east-1',
    launcher: async () => MOTO_LAUNCHER,
    logger: createLogger({ name: `bench-${delivery}`, level: 'warn' }),
  });
  try {
    return await use(cluster);
  } finally {
    await cluster.close();
  }
}

/**
 * Loads one local worker's instance metadata endpoint, then another's
 * container endpoint, then moto's instance metadata, one after the other so
 * that none shares the two cores with another. The load generator runs as the
 * agent's user, so the endpoint's peer-owner check passes (once per connection).
 */
export async function runImdsEndpoint(moto: Moto, load: EndpointLoad): Promise<ImdsEndpointResult> {
  const imds = await withCluster('imds', async (cluster) => {
    const [where] = await cluster.run(['sh', '-c', 'echo "$AWS_EC2_METADATA_SERVICE_ENDPOINT"']);
    const base = where?.stdout.trim();
    if (!base) throw new Error('the workload saw no instance metadata endpoint');
    const response = await fetch(new URL('latest/api/token', base), { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
    if (response.status !== 200) throw new Error(`the instance metadata endpoint answered a token request with ${response.status}`);
    const token = await response.text();
    return loadOnce({ url: new URL('latest/meta-data/iam/security-credentials/credfwd', base).href, headers: { 'x-aws-ec2-metadata-token': token }, ...load });
  });
  const container = await withCluster('endpoint', async (cluster) => {
    const [where] = await cluster.run(['sh', '-c', 'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"']);
    const [url, tokenFile] = (where?.stdout ?? '').trim().split(' ');
    if (!url || !tokenFile) throw new Error('the workload saw no credentials endpoint');
    return loadOnce({ url, headers: { Authorization: await readFile(tokenFile, 'utf8') }, ...load });
  });
  const motoAnswer = await loadOnce({ url: `${moto.url}${MOTO_IMDS_PATH}`, headers: {}, ...load });
  return { load, imds, container, moto: motoAnswer };
}

/** The Markdown section for BENCHMARKS.md. */
export function imdsEndpointSection(result: ImdsEndpointResult): string {
  const fixed = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : '—');
  const row = (name: string, answer: LoadAnswer): string =>
    `| ${name} | ${fixed(answer.requestsPerSecond)} | ${fixed(answer.latency.p50, 2)} | ${fixed(answer.latency.p99, 2)} | ${fixed(answer.latency.max, 1)} | ${answer.errors} |`;
  return [
    '## Instance metadata endpoint',
    '',
    `${result.load.connections} keep-alive connections for ${result.load.durationMs / 1000} s after ${result.load.warmupMs / 1000} s of warm-up, each`,
    'asking for credentials again as soon as it has an answer; one after the other in the same run.',
    '',
    '| endpoint | requests/s | p50 ms | p99 ms | max ms | errors |',
    '|---|---|---|---|---|---|',
    row('credfwd instance metadata (imds delivery, IMDSv2 token)', result.imds),
    row('credfwd container credentials (endpoint delivery)', result.container),
    row('moto instance metadata', result.moto),
    '',
  ].join('\n');
}
