import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import anyTest, { type TestFn } from 'ava';
import type { Cluster, LaunchOptions } from '@credfwd/coordinator';
import { parseEnvOutput } from './helpers/credfwd-cli.ts';
import type { Moto } from './helpers/moto.ts';
import { launchRoleCluster, startMotoAsLauncher } from './helpers/role-launches.ts';
import { createOtherUser } from './helpers/other-user.ts';

const run = promisify(execFile);
const test = anyTest as TestFn<{ moto: Moto }>;
const BOTO3_LOOP = fileURLToPath(new URL('./workloads/boto3_loop.py', import.meta.url));
const JS_SDK_LOOP = fileURLToPath(new URL('./workloads/js-sdk-loop.ts', import.meta.url));
const ROLE = { roleArn: 'arn:aws:iam::123456789012:role/batch', durationSeconds: 900 };
const ASSUMED = /^arn:aws:sts::123456789012:assumed-role\/batch\/credfwd-c-/;

// The IMDSv2 flow with nothing but HTTP, as KvikIO and other libcurl-based clients do it: a session token, the role name, its credentials.
const PLAIN_HTTP_FLOW = [
  'base=$AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'token=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 21600" "${base}latest/api/token")',
  // The token reaches curl on its standard input (-H @-), never in an argv other users could read.
  'role=$(printf "X-aws-ec2-metadata-token: %s" "$token" | curl -sf -H @- "${base}latest/meta-data/iam/security-credentials/")',
  'printf "X-aws-ec2-metadata-token: %s" "$token" | curl -sf -H @- "${base}latest/meta-data/iam/security-credentials/$role" | python -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in (\'Code\', \'Type\', \'Expiration\')} | {\'key\': d[\'AccessKeyId\'][:4]}))"',
  'echo "v1=$(curl -s -o /dev/null -w "%{http_code}" "${base}latest/meta-data/iam/security-credentials/$role")"',
].join(' && ');

test.before(async (t) => {
  t.context = { moto: await startMotoAsLauncher('imds-launcher') };
});

test.after.always(async (t) => {
  await t.context.moto?.stop();
});

function launch(t: { context: { moto: Moto }; teardown(fn: () => Promise<void>): void }, options: Partial<LaunchOptions> = {}): Promise<Cluster> {
  return launchRoleCluster(t, t.context.moto, { credentials: ROLE, delivery: 'imds', ...options });
}

test('imds mode: the AWS CLI resolves iam-role credentials, and the workload has the endpoint and no static keys', async (t) => {
  const cluster = await launch(t, { workers: 2 });
  const results = await cluster.run(['sh', '-c', 'aws configure list && aws sts get-caller-identity --output text --query Arn && echo ---ENV--- && env']);
  t.is(results.length, 2);
  for (const r of results) {
    t.is(r.exitCode, 0, r.stderr);
    const [listing = '', env = ''] = r.stdout.split('---ENV---');
    t.regex(listing, /access_key\s+\S+\s+iam-role/);
    t.regex(listing, /arn:aws:sts::123456789012:assumed-role\/batch\/credfwd-c-/);
    const vars = parseEnvOutput(env);
    t.regex(vars.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    t.is(vars.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, 'IPv4');
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION', 'AWS_EC2_METADATA_DISABLED', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
      t.is(vars[name], undefined, name);
    }
  }
});

test('imds mode: one long-lived boto3 client sees three keys across two refreshes without restart', async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  // botocore is served its own Expiration (imds-expiration.ts): with the others', its IMDS "static stability" would hold this client on its first key for 2 to 10 minutes.
  const [result] = await cluster.run(['python', BOTO3_LOOP, '3', '45']);
  t.is(result?.exitCode, 0, `boto3 saw fewer than three keys within 45 s: ${result?.stdout ?? ''}${result?.stderr ?? ''}`);
  const lines = (result?.stdout ?? '').trim().split('\n').map((line) => JSON.parse(line) as { key: string; arn: string; method: string; after: number });
  t.is(new Set(lines.map((l) => l.key)).size, 3, 'three keys: the first and two pushes');
  t.log(`keys seen after ${lines.map((l) => `${l.after} s`).join(', ')}`);
  for (const l of lines) {
    t.is(l.method, 'iam-role');
    t.regex(l.arn, ASSUMED);
  }
});

test('imds mode: a long-running AWS SDK for JavaScript v3 client picks up refreshed credentials without restart', async (t) => {
  const cluster = await launch(t, { refreshIntervalSeconds: 2 });
  const [result] = await cluster.run([process.execPath, JS_SDK_LOOP, '3', '45']);
  t.is(result?.exitCode, 0, result?.stderr);
  const lines = (result?.stdout ?? '').trim().split('\n').map((line) => JSON.parse(line) as { key: string; arn: string });
  t.is(new Set(lines.map((l) => l.key)).size, 3);
  for (const l of lines) t.regex(l.arn, ASSUMED);
});

test('imds mode: a plain HTTP client following the IMDSv2 token flow gets the credentials; without a token it gets 401', async (t) => {
  const cluster = await launch(t);
  const [result] = await cluster.run(['sh', '-c', PLAIN_HTTP_FLOW]);
  t.is(result?.exitCode, 0, result?.stderr);
  const [json = '', v1 = ''] = (result?.stdout ?? '').trim().split('\n');
  const body = JSON.parse(json) as { Code: string; Type: string; Expiration: string; key: string };
  t.like(body, { Code: 'Success', Type: 'AWS-HMAC', key: 'ASIA' });
  t.true(new Date(body.Expiration).getTime() > Date.now());
  t.is(v1, 'v1=401');
});

test('imds mode: another local user is refused with 403, while the agent\'s own user is answered', async (t) => {
  const cluster = await launch(t);
  const [printed] = await cluster.run(['sh', '-c', 'echo "$AWS_EC2_METADATA_SERVICE_ENDPOINT"']);
  const base = printed?.stdout.trim() ?? '';
  t.regex(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const other = await createOtherUser(t);
  const askToken = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `${base}latest/api/token`];
  const asOwner = await run(askToken[0] ?? 'curl', askToken.slice(1));
  t.is(asOwner.stdout, '200', 'the agent\'s own user (the control) is answered');
  const asOther = other.run(askToken);
  t.is(asOther.stdout, '403', 'another user is refused a token');
  // A token the owner obtained does not help the other user either: the check is on the connection, not the token.
  const token = (await run('curl', ['-sf', '-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `${base}latest/api/token`])).stdout;
  const stolen = other.run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', '@-', `${base}latest/meta-data/iam/security-credentials/credfwd`], `X-aws-ec2-metadata-token: ${token}`);
  t.is(stolen.stdout, '403', stolen.stderr);
});
