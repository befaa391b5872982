import test from 'ava';
import type { DeliveryMode } from '@credfwd/shared';
import type { StoredCredentials } from '../src/credential-store.ts';
import { taskEnvironment, type TaskEnvironmentInput } from '../src/task-environment.ts';

const CREDENTIALS: StoredCredentials = {
  value: { accessKeyId: 'ASIATASKENVKEY000001', secretAccessKey: 'task-env-secret', sessionToken: 'task-env-token' },
  seq: 1,
  receivedAt: new Date(),
  expiresAt: new Date(Date.now() + 3600_000),
};
// What a worker's own environment may hold: each of these would send an SDK elsewhere.
const BASE = {
  PATH: '/usr/bin',
  AWS_ACCESS_KEY_ID: 'AKIAWORKEROWN0000001',
  AWS_PROFILE: 'worker',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://169.254.169.254/',
  AWS_CONFIG_FILE: '/home/worker/.aws/config',
};

function build(delivery: DeliveryMode, extra: Partial<TaskEnvironmentInput> = {}): ReturnType<typeof taskEnvironment> {
  return taskEnvironment({ baseEnv: BASE, settings: { delivery, region: 'eu-west-1', environ: {} }, credentials: CREDENTIALS, ...extra });
}

test('imds delivery points SDKs at the agent\'s endpoint, over IPv4, with no static keys and no switch that disables it', (t) => {
  const built = build('imds', { imdsUrl: 'http://127.0.0.1:4242/' });
  if (!('env' in built)) return t.fail(built.refusal);
  t.like(built.env, { PATH: '/usr/bin', AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:4242/', AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'IPv4', AWS_REGION: 'eu-west-1' });
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_EC2_METADATA_DISABLED']) t.false(name in built.env, name);
  t.deepEqual(build('imds'), { refusal: 'credfwd-agent: the instance metadata endpoint is not running\n' });
});

test('process delivery hands a config file and hides the worker\'s own credential sources', (t) => {
  const built = build('process', { configFile: '/tmp/credfwd-endpoint-x/config' });
  if (!('env' in built)) return t.fail(built.refusal);
  t.like(built.env, { AWS_CONFIG_FILE: '/tmp/credfwd-endpoint-x/config', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' });
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) t.false(name in built.env, name);
  t.deepEqual(build('process'), { refusal: 'credfwd-agent: the credential_process profile is not written\n' });
});

test('a task may not override what imds or process delivery sets', (t) => {
  const imds = build('imds', { imdsUrl: 'http://127.0.0.1:4242/', taskEnv: { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://evil/' } });
  t.regex('refusal' in imds ? imds.refusal : '', /would override the forwarded credentials/);
  const process = build('process', { configFile: '/tmp/c', taskEnv: { AWS_CONFIG_FILE: '/tmp/other' } });
  t.regex('refusal' in process ? process.refusal : '', /would override the forwarded credentials/);
});
