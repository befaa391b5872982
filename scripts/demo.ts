import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launchCluster, type WorkerResult } from '@credfwd/coordinator';
import { CredfwdError, createLogger, isCredfwdError, maskAccessKeyId } from '@credfwd/shared';
import { startMoto, type Moto } from '../tests/helpers/moto.ts';

const WORKLOAD = fileURLToPath(new URL('./demo-workload.ts', import.meta.url));
const REAL = process.argv.includes('--real');
const DATASET = 's3://credfwd-demo/input/';

interface WorkloadReport {
  arn: string;
  accessKeyId: string;
  expiration: string | null;
  dataset: string | null;
}

function requireMoto(): void {
  const found = spawnSync('moto_server', ['--help'], { stdio: 'ignore' });
  if (found.error) {
    throw new CredfwdError(
      'DEMO_PREREQUISITE_MISSING',
      'moto_server is not installed, so the demo has no local STS to talk to',
      "install it with pip install 'moto[server]', or run pnpm demo --real with real AWS credentials",
    );
  }
}

/** Fake long-term keys for the launcher: moto accepts any signature, so no AWS account is involved. */
function useFakeLauncher(moto: Moto): void {
  for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
  process.env.AWS_ACCESS_KEY_ID = 'AKIADEMOLAUNCHER0001';
  process.env.AWS_SECRET_ACCESS_KEY = 'demo-launcher-secret-never-leaves-this-process';
  process.env.AWS_ENDPOINT_URL = moto.url;
  process.env.AWS_REGION = 'us-east-1';
}

function row(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
}

function printTable(results: WorkerResult[]): void {
  const header = ['worker', 'acts as', 'access key', 'expires', 'DATASET'];
  const rows = results.map((r) => {
    if (r.exitCode !== 0) return [r.worker, `failed (${r.exitCode ?? r.signal}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`, '', '', ''];
    const report = JSON.parse(r.stdout) as WorkloadReport;
    return [r.worker, report.arn, maskAccessKeyId(report.accessKeyId), report.expiration ?? '-', report.dataset ?? '-'];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((cells) => cells[i]?.length ?? 0)));
  process.stdout.write(`${row(header, widths)}\n${row(widths.map((w) => '-'.repeat(w)), widths)}\n`);
  for (const cells of rows) process.stdout.write(`${row(cells, widths)}\n`);
}

async function main(): Promise<number> {
  let moto: Moto | undefined;
  if (!REAL) {
    requireMoto();
    moto = await startMoto();
    useFakeLauncher(moto);
    process.stdout.write(`credfwd demo: local STS (moto) at ${moto.url}; no AWS account is used\n`);
    process.stdout.write(`launcher access key ${maskAccessKeyId(process.env.AWS_ACCESS_KEY_ID ?? '')} stays on this machine\n`);
  } else {
    process.stdout.write('credfwd demo: real AWS STS, with your default credential chain\n');
  }
  try {
    const cluster = await launchCluster({
      workers: 3,
      credentials: 'forward',
      environ: { DATASET, ...(moto ? { AWS_ENDPOINT_URL: moto.url } : {}) },
      logger: createLogger({ name: 'credfwd-demo', level: process.env.CREDFWD_LOG_LEVEL ?? 'warn' }),
      onProgress: (ready, total) => process.stdout.write(`${ready}/${total} workers ready\n`),
    });
    try {
      const results = await cluster.run([process.execPath, WORKLOAD]);
      printTable(results);
      return results.every((r) => r.exitCode === 0) ? 0 : 1;
    } finally {
      await cluster.close();
    }
  } finally {
    await moto?.stop();
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  const error = isCredfwdError(err) ? err : new CredfwdError('INTERNAL', err instanceof Error ? err.message : String(err), 'rerun with CREDFWD_LOG_LEVEL=debug');
  process.stderr.write(`error[${error.code}]: ${error.message}\nhint: ${error.hint}\n`);
  process.exitCode = 1;
}
