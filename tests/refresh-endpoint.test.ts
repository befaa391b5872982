import anyTest, { type TestFn } from 'ava';
import { fileURLToPath } from 'node:url';
import { launchCluster, type Cluster, type LaunchOptions } from '@credfwd/coordinator';
import { capturedLogger } from './helpers/captured-logger.ts';
import { createIamUser, startMoto, type Moto } from './helpers/moto.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';
import { parseEnvOutput } from './helpers/credfwd-cli.ts';
import { within } from './helpers/deadline.ts';

const test = anyTest as TestFn<{ moto: Moto; counter: StsCounter }>;
const BOTO3_LOOP = fileURLToPath(new URL('./workloads/boto3_loop.py', import.meta.url));
const JS_SDK_LOOP = fileURLToPath(new URL('./workloads/js-sdk-loop.ts', import.meta.url));
const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/batch', durationSeconds: 900 };

interface KeyLine {
  key: string;
  arn: string;
  calls: number;
}

test.before(async (t) => {
  const moto = await startMoto();
  const counter = await startStsCounter(moto.url);
  const launcher = await createIamUser(moto, 'refresher');
  // The launcher's identity for every cluster of this file (a test worker process of its own).
  process.env.AWS_ACCESS_KEY_ID = launcher.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = launcher.secretAccessKey;
  process.env.AWS_ENDPOINT_URL_STS = counter.url;
  t.context = { moto, counter };
});

test.after.always(async (t) => {
  await t.context.counter?.stop();
  await t.context.moto?.stop();
});

async function launch(t: { context: { moto: Moto }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions>): Promise<Cluster> {
  const cluster = await launchCluster({
    workers: 2,
    credentials: ROLE,
    region: 'us-east-1',
    environ: { AWS_ENDPOINT_URL: t.context.moto.url },
    logger: capturedLogger().logger,
    ...options,
  });
  t.teardown(() => cluster.close());
  return cluster;
}

function keyLines(stdout: string): KeyLine[] {
  return stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as KeyLine);
}

test('endpoint mode: a long-running boto3 client keeps working across two refreshes and sees a new key each time', async (t) => {
  const cluster = await launch(t, { delivery: 'endpoint', refreshIntervalSeconds: 2 });
  const results = await cluster.run(['python', BOTO3_LOOP, '3', '45']);
  t.is(results.length, 2);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    const lines = keyLines(r.stdout);
    t.is(new Set(lines.map((l) => l.key)).size, 3, 'three keys: the first and two refreshes');
    for (const l of lines) t.regex(l.arn, /^arn:aws:sts::123456789012:assumed-role\/batch\/credfwd-c-/);
  }
  t.true((cluster.status().refresh?.consecutiveFailures ?? -1) === 0);
});

test('endpoint mode: a long-running AWS SDK for JavaScript v3 client picks up refreshed credentials without restart', async (t) => {
  const cluster = await launch(t, { workers: 1, delivery: 'endpoint', refreshIntervalSeconds: 2 });
  const [result] = await cluster.run([process.execPath, JS_SDK_LOOP, '3', '45']);
  t.is(result?.exitCode, 0, result?.stderr);
  t.is(new Set(keyLines(result?.stdout ?? '').map((l) => l.key)).size, 3);
});

test('endpoint mode: the AWS CLI resolves container-role credentials and the workload has no static keys', async (t) => {
  const cluster = await launch(t, { delivery: 'endpoint' });
  const results = await cluster.run(['sh', '-c', 'aws configure list && aws sts get-caller-identity --output text --query Arn && echo ---ENV--- && env']);
  t.is(results.length, 2);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    const [listing = '', env = ''] = r.stdout.split('---ENV---');
    t.regex(listing, /access_key\s+\S+\s+container-role/);
    t.regex(listing, /arn:aws:sts::123456789012:assumed-role\/batch\/credfwd-c-/);
    const vars = parseEnvOutput(env);
    t.regex(vars.AWS_CONTAINER_CREDENTIALS_FULL_URI ?? '', /^http:\/\/127\.0\.0\.1:\d+\//);
    t.truthy(vars.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE);
    t.is(vars.AWS_EC2_METADATA_DISABLED, 'true');
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION']) t.is(vars[name], undefined, name);
  }
});

test('env mode with restart supervision: each worker\'s command is restarted with a new AWS_ACCESS_KEY_ID', async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  const keys = new Map<string, string[]>();
  let done: () => void = () => undefined;
  const twoKeysEach = new Promise<void>((resolve) => { done = resolve; });
  const running = cluster.run(['sh', '-c', 'echo "key=$AWS_ACCESS_KEY_ID"; exec sleep 300'], {
    onRefresh: 'restart',
    onOutput: (worker, stream, chunk) => {
      if (stream !== 'stdout') return;
      for (const match of chunk.toString().matchAll(/key=(\S+)/g)) keys.set(worker, [...(keys.get(worker) ?? []), match[1] ?? '']);
      if (keys.size === 2 && [...keys.values()].every((k) => new Set(k).size >= 2)) done();
    },
  });
  await within(twoKeysEach, 30_000, 'each of the two workers printed a second key after a restart');
  for (const seen of keys.values()) {
    t.regex(seen[0] ?? '', /^ASIA/);
    t.not(seen[0], seen[1]);
  }
  await cluster.close();
  const results = await running;
  t.is(results.length, 2, 'one result per worker: restarts are not exits');
});

test('env mode with signal supervision: the command receives SIGHUP on refresh', async (t) => {
  const cluster = await launch(t, { workers: 1, refreshIntervalSeconds: 2 });
  let hupped: () => void = () => undefined;
  const gotHup = new Promise<void>((resolve) => { hupped = resolve; });
  const running = cluster.run(['sh', '-c', 'trap "echo got-hup" HUP; echo ready; while :; do sleep 5 & wait $!; done'], {
    onRefresh: 'signal:SIGHUP',
    onOutput: (_worker, stream, chunk) => {
      if (stream === 'stdout' && chunk.includes('got-hup')) hupped();
    },
  });
  await within(gotHup, 30_000, 'the command received SIGHUP on a refresh');
  t.pass();
  await cluster.close();
  await running;
});

// Serial: ava runs it before the concurrent tests, so the counter sees this cluster's calls alone.
test.serial('one AssumeRole per refresh for the whole cluster, whatever the worker count', async (t) => {
  const { counter } = t.context;
  const cluster = await launch(t, { workers: 3, refreshIntervalSeconds: 2 });
  const before = counter.count('AssumeRole');
  const firstSeq = Math.max(...cluster.status().agents.map((a) => a.ackedSeq));
  const acked = new Map<string, number>();
  await new Promise<void>((resolve) => {
    cluster.on('agent-ready', (agentId, seq) => {
      acked.set(agentId, seq);
      if (acked.size === 3 && [...acked.values()].every((s) => s >= firstSeq + 2)) resolve();
    });
  });
  const calls = counter.count('AssumeRole') - before;
  t.true(calls >= 2 && calls <= 3, `${calls} AssumeRole calls for two refreshes of three workers`);
});
