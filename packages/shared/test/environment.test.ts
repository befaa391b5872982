import test from 'ava';
import type { AwsCredentials } from '../src/credentials.ts';
import {
  buildWorkloadEnv,
  checkEnvironSize,
  cleanLauncherEnv,
  isSecretLookingName,
  redactEnviron,
  validateEnviron,
  MAX_ENVIRON_BYTES,
  type Env,
  type WorkloadEnvInput,
} from '../src/environment.ts';
import { CredfwdError } from '../src/errors.ts';

test('validateEnviron accepts ordinary names in every mode', (t) => {
  const environ = { DATASET: 's3://bucket/x', _private: '1', AWS_ENDPOINT_URL: 'http://127.0.0.1:5000', AWS_REGION: 'eu-west-1' };
  for (const mode of ['env', 'endpoint', 'none'] as const) t.notThrows(() => validateEnviron(environ, mode));
});

for (const name of ['1ABC', 'A-B', 'A B', 'A=B', '', 'ÄRGER', 'PATH\n']) {
  test(`validateEnviron refuses the name ${JSON.stringify(name)} with ENV_NAME_INVALID`, (t) => {
    t.throws(() => validateEnviron({ [name]: 'x' }, 'none'), { instanceOf: CredfwdError, code: 'ENV_NAME_INVALID' });
  });
}

for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_ROLE_ARN']) {
  test(`validateEnviron refuses ${name} in env mode with ENV_CONFLICT, and allows it in none mode`, (t) => {
    t.throws(() => validateEnviron({ [name]: 'x' }, 'env'), { instanceOf: CredfwdError, code: 'ENV_CONFLICT' });
    t.throws(() => validateEnviron({ [name]: 'x' }, 'endpoint'), { instanceOf: CredfwdError, code: 'ENV_CONFLICT' });
    t.notThrows(() => validateEnviron({ [name]: 'x' }, 'none'));
  });
}

test('validateEnviron refuses AWS_EC2_METADATA_DISABLED only in endpoint mode, which sets it', (t) => {
  t.throws(() => validateEnviron({ AWS_EC2_METADATA_DISABLED: 'false' }, 'endpoint'), { instanceOf: CredfwdError, code: 'ENV_CONFLICT' });
  t.notThrows(() => validateEnviron({ AWS_EC2_METADATA_DISABLED: 'false' }, 'env'));
});

test('validateEnviron refuses credfwd\'s own CREDFWD_ names with ENV_CONFLICT in every mode', (t) => {
  for (const mode of ['env', 'endpoint', 'none'] as const) {
    t.throws(() => validateEnviron({ CREDFWD_X: '1' }, mode), { instanceOf: CredfwdError, code: 'ENV_CONFLICT' });
  }
});

test('validateEnviron refuses a value with a NUL byte without echoing the value', (t) => {
  const err = t.throws(() => validateEnviron({ DB_PASSWORD: 'hunter2\0' }, 'env'), { instanceOf: CredfwdError, code: 'CONFIG_INVALID' });
  t.false(err?.message.includes('hunter2'));
});

test('validateEnviron refuses a 200 KB value with ENV_TOO_LARGE naming the limit, not the value (issue 10: the agent looped on "Max payload size exceeded")', (t) => {
  const value = 'v'.repeat(200_000);
  const error = t.throws(() => validateEnviron({ BIG: value }, 'env'), { instanceOf: CredfwdError, code: 'ENV_TOO_LARGE' });
  t.regex(error?.hint ?? '', /64 KiB/);
  t.false(`${error?.message} ${error?.hint}`.includes('vvvvvvvv'), 'the value is never echoed');
});

test('checkEnvironSize counts the JSON encoding, so escapes cannot smuggle a frame past the limit', (t) => {
  // 20,000 control characters are 20 KB as bytes but 120 KB once JSON-escaped (\u0001).
  t.throws(() => checkEnvironSize({ CTRL: '\u0001'.repeat(20_000) }), { code: 'ENV_TOO_LARGE' });
  const overhead = Buffer.byteLength(JSON.stringify({ A: '' }));
  t.notThrows(() => checkEnvironSize({ A: 'x'.repeat(MAX_ENVIRON_BYTES - overhead) }), 'exactly the limit is allowed');
  t.throws(() => checkEnvironSize({ A: 'x'.repeat(MAX_ENVIRON_BYTES - overhead + 1) }), { code: 'ENV_TOO_LARGE' });
});

test('checkEnvironSize counts many small variables together', (t) => {
  const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`V${i}`, 'value']));
  t.throws(() => checkEnvironSize(many, 'the task env'), { code: 'ENV_TOO_LARGE', message: /^the task env holds/ });
});

test('isSecretLookingName flags names that look secret, in any case', (t) => {
  for (const name of ['DB_PASSWORD', 'GITHUB_TOKEN', 'api_key', 'MY_SECRET', 'GOOGLE_APPLICATION_CREDENTIALS']) t.true(isSecretLookingName(name), name);
  for (const name of ['DATASET', 'PATH', 'AWS_REGION']) t.false(isSecretLookingName(name), name);
});

test('redactEnviron masks only secret-looking values', (t) => {
  t.deepEqual(redactEnviron({ DATASET: 's3://b', DB_PASSWORD: 'hunter2' }), { DATASET: 's3://b', DB_PASSWORD: '[redacted]' });
});

test('cleanLauncherEnv drops every AWS_ and CREDFWD_ variable and keeps PATH, HOME and the locale', (t) => {
  const launcher: Env = {
    PATH: '/root/.pyenv/shims:/usr/bin',
    HOME: '/home/me',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE01',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_PROFILE: 'admin',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
    CREDFWD_JOIN: 'credfwd://…',
    UNSET: undefined,
  };
  t.deepEqual(cleanLauncherEnv(launcher), { PATH: launcher.PATH, HOME: '/home/me', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' });
});

const credentials: AwsCredentials = {
  accessKeyId: 'ASIAEXAMPLEEXAMPLE01',
  secretAccessKey: 'forwarded-secret',
  sessionToken: 'forwarded-token',
};
const expiresAt = new Date('2030-01-02T03:04:05.000Z');
const endpoint = { url: 'http://127.0.0.1:40123/credentials', tokenFile: '/run/credfwd/token' };

/** A worker's own environment: tools, a stale identity, its platform identity, and credfwd's secrets. */
const worker: Env = {
  PATH: '/usr/bin',
  HOME: '/home/worker',
  AWS_ACCESS_KEY_ID: 'AKIASTALESTALESTALE1',
  AWS_SECRET_ACCESS_KEY: 'stale-secret',
  AWS_SESSION_TOKEN: 'stale-token',
  AWS_SECURITY_TOKEN: 'stale-token',
  AWS_CREDENTIAL_EXPIRATION: '2000-01-01T00:00:00Z',
  AWS_PROFILE: 'worker-profile',
  AWS_DEFAULT_PROFILE: 'worker-profile',
  AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/irsa',
  AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks/token',
  AWS_ROLE_SESSION_NAME: 'irsa',
  AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials',
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/x',
  AWS_CONTAINER_AUTHORIZATION_TOKEN: 'ecs-token',
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/var/run/secrets/pods.eks.amazonaws.com/token',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
  CREDFWD_JOIN: 'credfwd://secret',
};

function build(overrides: Partial<WorkloadEnvInput>): Record<string, string> {
  return buildWorkloadEnv({ base: worker, mode: 'env', environ: { DATASET: 's3://b/x' }, region: 'eu-central-1', ...overrides });
}

test('buildWorkloadEnv in env mode sets the forwarded credentials and removes every other identity', (t) => {
  t.deepEqual(build({ mode: 'env', credentials: { value: credentials, expiresAt } }), {
    PATH: '/usr/bin',
    HOME: '/home/worker',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
    DATASET: 's3://b/x',
    AWS_REGION: 'eu-central-1',
    AWS_DEFAULT_REGION: 'eu-central-1',
    AWS_ACCESS_KEY_ID: 'ASIAEXAMPLEEXAMPLE01',
    AWS_SECRET_ACCESS_KEY: 'forwarded-secret',
    AWS_SESSION_TOKEN: 'forwarded-token',
    AWS_SECURITY_TOKEN: 'forwarded-token',
    AWS_CREDENTIAL_EXPIRATION: '2030-01-02T03:04:05.000Z',
  });
});

test('buildWorkloadEnv in env mode sets no session token for credentials without one', (t) => {
  const env = build({ mode: 'env', credentials: { value: { accessKeyId: credentials.accessKeyId, secretAccessKey: 'x' }, expiresAt } });
  t.false('AWS_SESSION_TOKEN' in env);
  t.false('AWS_SECURITY_TOKEN' in env);
});

test('buildWorkloadEnv in env mode refuses to run without credentials', (t) => {
  t.throws(() => build({ mode: 'env' }));
});

test('buildWorkloadEnv in endpoint mode points SDKs at the endpoint and removes every other identity', (t) => {
  t.deepEqual(build({ mode: 'endpoint', endpoint }), {
    PATH: '/usr/bin',
    HOME: '/home/worker',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
    DATASET: 's3://b/x',
    AWS_REGION: 'eu-central-1',
    AWS_DEFAULT_REGION: 'eu-central-1',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoint.url,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: endpoint.tokenFile,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
});

test('buildWorkloadEnv in endpoint mode refuses to run without an endpoint', (t) => {
  t.throws(() => build({ mode: 'endpoint' }));
});

test('buildWorkloadEnv in none mode keeps the worker\'s platform identity and drops static keys', (t) => {
  const env = build({ mode: 'none' });
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN, AWS_CREDENTIAL_EXPIRATION, CREDFWD_JOIN, ...kept } = worker;
  t.deepEqual(env, { ...kept, DATASET: 's3://b/x', AWS_REGION: 'eu-central-1', AWS_DEFAULT_REGION: 'eu-central-1' });
  t.is(env.AWS_ROLE_ARN, worker.AWS_ROLE_ARN);
  t.is(env.AWS_WEB_IDENTITY_TOKEN_FILE, worker.AWS_WEB_IDENTITY_TOKEN_FILE);
  t.is(env.AWS_CONTAINER_CREDENTIALS_FULL_URI, worker.AWS_CONTAINER_CREDENTIALS_FULL_URI);
});

test('buildWorkloadEnv sets the launcher region unless environ sets it', (t) => {
  const environ = { AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'ap-south-1' };
  for (const mode of ['env', 'endpoint', 'none'] as const) {
    const env = build({ mode, environ, credentials: { value: credentials, expiresAt }, endpoint });
    t.is(env.AWS_REGION, 'ap-south-1', mode);
    t.is(env.AWS_DEFAULT_REGION, 'ap-south-1', mode);
  }
});

test('buildWorkloadEnv gives both region variables the environ region when environ sets only one', (t) => {
  for (const environ of [{ AWS_REGION: 'sa-east-1' }, { AWS_DEFAULT_REGION: 'sa-east-1' }] as Array<Record<string, string>>) {
    const env = build({ mode: 'none', environ });
    t.is(env.AWS_REGION, 'sa-east-1');
    t.is(env.AWS_DEFAULT_REGION, 'sa-east-1');
  }
});

test('buildWorkloadEnv keeps the worker\'s own AWS_EC2_METADATA_DISABLED in env mode', (t) => {
  const env = build({ base: { PATH: '/usr/bin', AWS_EC2_METADATA_DISABLED: 'true' }, credentials: { value: credentials, expiresAt } });
  t.is(env.AWS_EC2_METADATA_DISABLED, 'true');
});

test('buildWorkloadEnv leaves the worker\'s own region alone when the launcher has none', (t) => {
  const env = build({ mode: 'none', region: null, base: { PATH: '/usr/bin', AWS_REGION: 'us-west-2' } });
  t.is(env.AWS_REGION, 'us-west-2');
  t.false('AWS_DEFAULT_REGION' in env);
});

test('buildWorkloadEnv never passes credfwd\'s own variables to a workload', (t) => {
  for (const mode of ['env', 'endpoint', 'none'] as const) {
    const env = build({ mode, credentials: { value: credentials, expiresAt }, endpoint });
    t.false(Object.keys(env).some((name) => name.startsWith('CREDFWD_')), mode);
  }
});
