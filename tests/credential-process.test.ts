import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import type { Cluster, LaunchOptions } from '@credfwd/coordinator';
import { parseEnvOutput } from './helpers/credfwd-cli.ts';
import type { Moto } from './helpers/moto.ts';
import { launchRoleCluster, startMotoAsLauncher } from './helpers/role-launches.ts';
import { createOtherUser } from './helpers/other-user.ts';

const BOTO3_LOOP = fileURLToPath(new URL('./workloads/boto3_loop.py', import.meta.url));
const JS_SDK_LOOP = fileURLToPath(new URL('./workloads/js-sdk-loop.ts', import.meta.url));
const test = anyTest as TestFn<{ moto: Moto }>;
const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/batch', durationSeconds: 900 };
const ASSUMED = /arn:aws:sts::123456789012:assumed-role\/batch\/credfwd-c-/;

test.before(async (t) => {
  t.context = { moto: await startMotoAsLauncher('process-launcher') };
});

test.after.always(async (t) => {
  await t.context.moto?.stop();
});

function launch(t: { context: { moto: Moto }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions> = {}): Promise<Cluster> {
  return launchRoleCluster(t, t.context.moto, { credentials: ROLE, delivery: 'process', ...options });
}

test('process mode: the AWS CLI runs the profile\'s credential_process, and the config file is the workload\'s alone', async (t) => {
  const cluster = await launch(t);
  const [r] = await cluster.run(['sh', '-c', 'aws configure list && aws sts get-caller-identity --output text --query Arn && echo "mode=$(stat -c %a "$AWS_CONFIG_FILE")" && echo ---ENV--- && env']);
  t.is(r?.exitCode, 0, r?.stderr);
  const [listing = '', env = ''] = (r?.stdout ?? '').split('---ENV---');
  t.regex(listing, /access_key\s+\S+\s+custom-process/);
  t.regex(listing, ASSUMED);
  t.regex(listing, /mode=600/);
  const vars = parseEnvOutput(env);
  t.regex(vars.AWS_CONFIG_FILE ?? '', /credfwd-endpoint-[^/]+\/config$/);
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE']) t.is(vars[name], undefined, name);
});

test('process mode: boto3 resolves custom-process credentials, and credfwd-agent credentials prints version 1 with an Expiration', async (t) => {
  const cluster = await launch(t);
  const script = [
    'import boto3, configparser, json, os, shlex, subprocess',
    's = boto3.Session()',
    'c = s.get_credentials()',
    'arn = s.client("sts").get_caller_identity()["Arn"]',
    'config = configparser.RawConfigParser(); config.read(os.environ["AWS_CONFIG_FILE"])',
    'out = json.loads(subprocess.run(shlex.split(config["default"]["credential_process"]), capture_output=True, check=True).stdout)',
    'print(json.dumps({"method": c.method, "arn": arn, "fields": sorted(out), "version": out["Version"], "expiration": out["Expiration"], "same": out["AccessKeyId"] == c.get_frozen_credentials().access_key}))',
  ].join('\n');
  const [r] = await cluster.run(['python', '-c', script]);
  t.is(r?.exitCode, 0, r?.stderr);
  const seen = JSON.parse(r?.stdout ?? '{}') as { method: string; arn: string; fields: string[]; version: number; expiration: string; same: boolean };
  t.is(seen.method, 'custom-process');
  t.regex(seen.arn, ASSUMED);
  t.deepEqual(seen.fields, ['AccessKeyId', 'Expiration', 'SecretAccessKey', 'SessionToken', 'Version']);
  t.is(seen.version, 1);
  t.true(Date.parse(seen.expiration) > Date.now());
  t.true(seen.same);
});

test('process mode: one long-lived boto3 client re-runs credential_process and sees three keys across two refreshes', async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  const [r] = await cluster.run(['python', BOTO3_LOOP, '3', '45']);
  t.is(r?.exitCode, 0, r?.stderr);
  const lines = (r?.stdout ?? '').trim().split('\n').map((line) => JSON.parse(line) as { key: string; arn: string });
  t.is(new Set(lines.map((l) => l.key)).size, 3);
  for (const l of lines) t.regex(l.arn, ASSUMED);
});

test('process mode: a long-running AWS SDK for JavaScript v3 client re-runs credential_process and sees three keys', async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  const [r] = await cluster.run([process.execPath, JS_SDK_LOOP, '3', '45']);
  t.is(r?.exitCode, 0, r?.stderr);
  t.is(new Set((r?.stdout ?? '').trim().split('\n').map((line) => (JSON.parse(line) as { key: string }).key)).size, 3);
});

test('process mode: another local user can neither read the token file nor get credentials from the endpoint', async (t) => {
  const cluster = await launch(t);
  const [printed] = await cluster.run(['sh', '-c', 'cat "$AWS_CONFIG_FILE"']);
  const url = /--url (\S+)/.exec(printed?.stdout ?? '')?.[1] ?? '';
  const tokenFile = /--token-file (\S+)/.exec(printed?.stdout ?? '')?.[1] ?? '';
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\//);
  const other = await createOtherUser(t);
  const read = other.run(['cat', tokenFile]);
  t.not(read.status, 0);
  t.regex(read.stderr, /Permission denied/);
  t.is(other.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', url]).stdout, '401');
});
