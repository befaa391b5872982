import anyTest, { type TestFn } from 'ava';
import { assumeRoleViaCli, createIamUser, startMoto, type Moto } from './helpers/moto.ts';
import { startStsCounter, type StsCounter } from './helpers/sts-counter.ts';
import { isolatedEnv, parseEnvOutput, parseJsonLines, runCredfwd } from './helpers/credfwd-cli.ts';

const test = anyTest as TestFn<{ moto: Moto; counter: StsCounter }>;

/** What every worker runs: who am I, then my whole environment. */
const WHOAMI = ['sh', '-c', 'aws sts get-caller-identity --output json && echo ---ENV--- && env'];

interface WorkerView {
  worker: string;
  exitCode: number | null;
  arn: string;
  env: Record<string, string>;
}

function workerViews(stdout: string): WorkerView[] {
  return parseJsonLines(stdout).map((line) => {
    const [identity = '', env = ''] = line.stdout.split('---ENV---');
    const arn = line.exitCode === 0 ? (JSON.parse(identity) as { Arn: string }).Arn : '';
    return { worker: line.worker, exitCode: line.exitCode, arn, env: parseEnvOutput(env) };
  });
}

test.before(async (t) => {
  const moto = await startMoto();
  t.context = { moto, counter: await startStsCounter(moto.url) };
});

test.after.always(async (t) => {
  await t.context.counter?.stop();
  await t.context.moto?.stop();
});

test.serial('forward with an IAM-user launcher: one GetSessionToken, workers act with minted keys, the launcher secret goes nowhere', async (t) => {
  const { moto, counter } = t.context;
  counter.reset();
  const launcher = await createIamUser(moto, 'alice');
  const result = await runCredfwd(
    ['launch', '--workers', '3', '--json', '--verbose', '--region', 'eu-west-2', '--env', `AWS_ENDPOINT_URL=${moto.url}`, '--', ...WHOAMI],
    isolatedEnv({
      AWS_ACCESS_KEY_ID: launcher.accessKeyId,
      AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey,
      AWS_ENDPOINT_URL_STS: counter.url,
      CREDFWD_LOG_LEVEL: 'debug',
    }),
  );
  t.is(result.code, 0, result.stderr);
  const workers = workerViews(result.stdout);
  t.is(workers.length, 3);
  t.is(new Set(workers.map((w) => w.worker)).size, 3);
  for (const w of workers) {
    t.is(w.exitCode, 0);
    t.not(w.arn, launcher.arn, 'workers must not act with the launcher key');
    t.truthy(w.env.AWS_ACCESS_KEY_ID);
    t.not(w.env.AWS_ACCESS_KEY_ID, launcher.accessKeyId);
    t.truthy(w.env.AWS_SESSION_TOKEN);
    t.is(w.env.AWS_SECURITY_TOKEN, w.env.AWS_SESSION_TOKEN);
    t.true(Date.parse(w.env.AWS_CREDENTIAL_EXPIRATION ?? '') > Date.now() + 50 * 60_000);
    t.is(w.env.AWS_REGION, 'eu-west-2');
    t.is(w.env.AWS_DEFAULT_REGION, 'eu-west-2');
    t.is(w.env.CREDFWD_JOIN, undefined);
  }
  t.deepEqual(counter.calls(), ['GetSessionToken'], 'exactly one STS call for three workers');
  t.false(result.stdout.includes(launcher.secretAccessKey), 'launcher secret in worker output or environment');
  t.false(result.stderr.includes(launcher.secretAccessKey), 'launcher secret in logs');
  t.regex(result.stderr, /"msg":"cluster created"/, 'logs were collected at debug level');
});

test.serial('forward with temporary launcher credentials passes them through with their real expiry and no STS call', async (t) => {
  const { moto, counter } = t.context;
  const base = await createIamUser(moto, 'bob');
  const temporary = await assumeRoleViaCli(moto, base, 'arn:aws:iam::123456789012:role/sso-admin', 'bob-sso', 3600);
  counter.reset();
  const result = await runCredfwd(
    ['launch', '--workers', '2', '--json', '--region', 'us-east-1', '--env', `AWS_ENDPOINT_URL=${moto.url}`, '--', ...WHOAMI],
    isolatedEnv({
      AWS_ACCESS_KEY_ID: temporary.accessKeyId,
      AWS_SECRET_ACCESS_KEY: temporary.secretAccessKey,
      AWS_SESSION_TOKEN: temporary.sessionToken,
      AWS_CREDENTIAL_EXPIRATION: temporary.expiration.toISOString(),
      AWS_ENDPOINT_URL_STS: counter.url,
    }),
  );
  t.is(result.code, 0, result.stderr);
  const workers = workerViews(result.stdout);
  t.is(workers.length, 2);
  for (const w of workers) {
    t.is(w.arn, 'arn:aws:sts::123456789012:assumed-role/sso-admin/bob-sso');
    t.is(w.env.AWS_ACCESS_KEY_ID, temporary.accessKeyId);
    t.is(w.env.AWS_SESSION_TOKEN, temporary.sessionToken);
    const drift = Math.abs(Date.parse(w.env.AWS_CREDENTIAL_EXPIRATION ?? '') - temporary.expiration.getTime());
    t.true(drift <= 5_000, `expiry kept (drift ${drift} ms)`);
  }
  t.deepEqual(counter.calls(), [], 'temporary credentials are never exchanged');
});

test.serial('role mode: one AssumeRole for four workers, each acting as the assumed role', async (t) => {
  const { moto, counter } = t.context;
  const launcher = await createIamUser(moto, 'carol');
  counter.reset();
  const result = await runCredfwd(
    ['launch', '--workers', '4', '--json', '--credentials', 'role:arn:aws:iam::123456789012:role/analyst', '--duration', '15m', '--region', 'us-east-1', '--env', `AWS_ENDPOINT_URL=${moto.url}`, '--', ...WHOAMI],
    isolatedEnv({ AWS_ACCESS_KEY_ID: launcher.accessKeyId, AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey, AWS_ENDPOINT_URL_STS: counter.url }),
  );
  t.is(result.code, 0, result.stderr);
  const workers = workerViews(result.stdout);
  t.is(workers.length, 4);
  const keys = new Set(workers.map((w) => w.env.AWS_ACCESS_KEY_ID));
  t.is(keys.size, 1, 'every worker holds the one minted credential');
  for (const w of workers) {
    t.regex(w.arn, /^arn:aws:sts::123456789012:assumed-role\/analyst\/credfwd-c-[0-9a-f]+$/);
    t.regex(w.env.AWS_ACCESS_KEY_ID ?? '', /^ASIA/);
    const remaining = Date.parse(w.env.AWS_CREDENTIAL_EXPIRATION ?? '') - Date.now();
    t.true(remaining > 10 * 60_000 && remaining <= 15 * 60_000, `15-minute duration honoured (${remaining} ms left)`);
  }
  t.deepEqual(counter.calls(), ['GetCallerIdentity', 'AssumeRole'], 'one call names the launcher (for SourceIdentity), one mints for every worker');
  t.false(result.stdout.includes(launcher.secretAccessKey) || result.stderr.includes(launcher.secretAccessKey));
});

test.serial('null mode: nothing minted, workers see no launcher variable and use their instance profile', async (t) => {
  const { moto, counter } = t.context;
  const launcher = await createIamUser(moto, 'dave');
  counter.reset();
  const result = await runCredfwd(
    [
      'launch', '--workers', '2', '--json', '--credentials', 'none', '--region', 'us-east-1',
      '--env', `AWS_ENDPOINT_URL=${moto.url}`, '--env', `AWS_EC2_METADATA_SERVICE_ENDPOINT=${moto.url}/`,
      '--', 'sh', '-c', 'aws configure list && aws sts get-caller-identity --output json && echo ---ENV--- && env',
    ],
    isolatedEnv({
      AWS_ACCESS_KEY_ID: launcher.accessKeyId,
      AWS_SECRET_ACCESS_KEY: launcher.secretAccessKey,
      AWS_PROFILE: 'launcher-profile',
      AWS_ENDPOINT_URL_STS: counter.url,
    }),
  );
  t.is(result.code, 0, result.stderr);
  const lines = parseJsonLines(result.stdout);
  t.is(lines.length, 2);
  for (const line of lines) {
    t.is(line.exitCode, 0, line.stderr);
    t.regex(line.stdout, /access_key\s+\S+\s+iam-role/);
    t.regex(line.stdout, /"Arn":/);
    const env = parseEnvOutput(line.stdout.split('---ENV---')[1] ?? '');
    t.is(env.AWS_ACCESS_KEY_ID, undefined);
    t.is(env.AWS_SECRET_ACCESS_KEY, undefined);
    t.is(env.AWS_PROFILE, undefined);
    t.is(env.AWS_ENDPOINT_URL_STS, undefined);
    t.is(env.AWS_DEFAULT_REGION, 'us-east-1');
  }
  t.deepEqual(counter.calls(), [], 'null mode makes no STS call');
  t.false(result.stdout.includes(launcher.accessKeyId));
});

test('no launcher credentials in a forwarding mode: LAUNCHER_NO_CREDENTIALS with a hint, no stack, no worker started', async (t) => {
  const result = await runCredfwd(['launch', '--workers', '2', '--', 'true'], isolatedEnv());
  t.is(result.code, 1);
  t.regex(result.stderr, /^error\[LAUNCHER_NO_CREDENTIALS\]: .+\nhint: .+/m);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
  t.is(result.stdout, '');
});

test('null mode needs no launcher credentials at all', async (t) => {
  const result = await runCredfwd(['launch', '--workers', '1', '--json', '--credentials', 'none', '--', 'sh', '-c', 'echo ok'], isolatedEnv());
  t.is(result.code, 0, result.stderr);
  t.is(parseJsonLines(result.stdout)[0]?.stdout, 'ok\n');
});
