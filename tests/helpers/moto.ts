import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { startService } from './service.ts';

const run = promisify(execFile);

/** A private moto server (STS, IAM, instance metadata) on 127.0.0.1. */
export interface Moto {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL or an SDK client's `endpoint`. */
  url: string;
  port: number;
  /** Kills the server and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Access keys as the AWS CLI takes them from the environment. */
export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A moto IAM user with one long-term (`AKIA…`) access key. */
export interface IamUser {
  accessKeyId: string;
  secretAccessKey: string;
  /** `arn:aws:iam::123456789012:user/NAME`. */
  arn: string;
}

/** Temporary credentials from STS. */
export interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/**
 * Starts `moto_server` (found on PATH, which must keep the pyenv shims) on a
 * free port, or on `port` to stand in for a moto that was stopped there.
 * Ready when werkzeug logs "Running on", which it does only after
 * binding; one request to moto's own API then confirms it answers.
 */
export async function startMoto(port?: number): Promise<Moto> {
  port ??= await freePort();
  const service = await startService({ command: 'moto_server', args: ['-H', '127.0.0.1', '-p', String(port)], ready: /Running on http/ });
  const url = `http://127.0.0.1:${port}`;
  try {
    const response = await fetch(`${url}/moto-api/data.json`);
    await response.body?.cancel();
    if (!response.ok) throw new Error(`moto_server on port ${port} answered its API with HTTP ${response.status}`);
  } catch (err) {
    await service.stop();
    throw err;
  }
  return { url, port, stop: service.stop };
}

/**
 * The environment for an AWS CLI call against moto: nothing AWS-related is
 * inherited (no AWS_PROFILE, stray session token or per-service endpoint, and
 * no config file) so a developer's own setup cannot leak in; PATH stays.
 */
function cliEnv(moto: Moto, keys: AwsKeys): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_ENDPOINT_URL: moto.url,
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    ...(keys.sessionToken === undefined ? {} : { AWS_SESSION_TOKEN: keys.sessionToken }),
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
}

/** Runs `aws ARGS --output json` against moto and returns the parsed answer. */
async function awsJson(moto: Moto, keys: AwsKeys, args: string[]): Promise<unknown> {
  try {
    const { stdout } = await run('aws', [...args, '--output', 'json'], { env: cliEnv(moto, keys) });
    return JSON.parse(stdout);
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    throw new Error(`aws ${args.join(' ')} failed${typeof stderr === 'string' ? `: ${stderr.trim()}` : ''}`, { cause: err });
  }
}

/** The string at `path` in a CLI answer, or an error naming the expected shape. */
function stringAt(answer: unknown, path: string[]): string {
  let value = answer;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'string') throw new Error(`AWS CLI answer has no string at ${path.join('.')}`);
  return value;
}

/** Dummy keys, as moto's docs use, for calls that need no particular identity: moto accepts any signature. */
const ANY_KEYS: AwsKeys = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/**
 * Creates an IAM user with an access key in moto, through the AWS CLI: a real
 * long-term launcher identity. GetCallerIdentity signed with that key answers
 * `arn:aws:iam::123456789012:user/NAME` (checked against moto 5.2), unlike
 * moto's default identity `arn:aws:sts::123456789012:user/moto`.
 */
export async function createIamUser(moto: Moto, userName: string): Promise<IamUser> {
  const user = await awsJson(moto, ANY_KEYS, ['iam', 'create-user', '--user-name', userName]);
  const key = await awsJson(moto, ANY_KEYS, ['iam', 'create-access-key', '--user-name', userName]);
  return {
    accessKeyId: stringAt(key, ['AccessKey', 'AccessKeyId']),
    secretAccessKey: stringAt(key, ['AccessKey', 'SecretAccessKey']),
    arn: stringAt(user, ['User', 'Arn']),
  };
}

/**
 * AssumeRole through the AWS CLI, signed with `keys`: how tests make temporary
 * (`ASIA…`) launcher credentials. Moto needs no such role to exist and answers
 * `arn:aws:sts::123456789012:assumed-role/ROLE/SESSION` for them. The CLI
 * refuses a session name under 2 characters and a duration under 900 s.
 */
export async function assumeRoleViaCli(
  moto: Moto,
  keys: AwsKeys,
  roleArn: string,
  sessionName: string,
  durationSeconds: number,
): Promise<TemporaryCredentials> {
  const answer = await awsJson(moto, keys, [
    'sts', 'assume-role',
    '--role-arn', roleArn,
    '--role-session-name', sessionName,
    '--duration-seconds', String(durationSeconds),
  ]);
  const expiration = new Date(stringAt(answer, ['Credentials', 'Expiration']));
  if (Number.isNaN(expiration.getTime())) throw new Error('AWS CLI answer has no valid Credentials.Expiration');
  return {
    accessKeyId: stringAt(answer, ['Credentials', 'AccessKeyId']),
    secretAccessKey: stringAt(answer, ['Credentials', 'SecretAccessKey']),
    sessionToken: stringAt(answer, ['Credentials', 'SessionToken']),
    expiration,
  };
}
