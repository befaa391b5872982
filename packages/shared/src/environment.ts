import { CredfwdError } from './errors.ts';
import type { AwsCredentials } from './credentials.ts';
import type { DeliveryMode } from './protocol.ts';
import { utcIsoString } from './utc-iso.ts';

/** A process environment as Node hands it out. */
export type Env = Record<string, string | undefined>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_LOOKING = /SECRET|TOKEN|PASSWORD|KEY|CREDENTIAL/i;

/** Variables that carry static credentials; env delivery sets them, every other mode removes them. */
export const STATIC_CREDENTIAL_VARS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
] as const;

/**
 * Variables that would make an SDK pick another identity over forwarded
 * credentials (the JS SDK even skips env credentials when AWS_PROFILE is set).
 */
export const OVERRIDING_IDENTITY_VARS = [
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_SESSION_NAME',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
] as const;

export const ENDPOINT_VARS = ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', 'AWS_EC2_METADATA_DISABLED'] as const;
/** What imds delivery sets (the endpoint, IPv4) or removes (a disable switch that would hide the endpoint from SDKs). */
export const IMDS_VARS = ['AWS_EC2_METADATA_SERVICE_ENDPOINT', 'AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE', 'AWS_EC2_METADATA_DISABLED'] as const;
/** What process delivery sets: a config file whose default profile runs `credfwd-agent credentials`, and no other source that could win over it. */
export const PROCESS_VARS = ['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_EC2_METADATA_DISABLED'] as const;
export const REGION_VARS = ['AWS_REGION', 'AWS_DEFAULT_REGION'] as const;

/** Prefix of credfwd's own variables (join string, agent id); never passed to workloads. */
export const CREDFWD_VAR_PREFIX = 'CREDFWD_';

/**
 * Most an environ may hold, counted as its JSON encoding (names, values,
 * quotes, escapes) in bytes. It travels sealed (JWE, base64url: about 4/3 of
 * that) inside one frame of at most MAX_PAYLOAD_BYTES (256 KiB), so 64 KiB
 * leaves room for the sealing and the rest of the frame whatever the values hold.
 */
export const MAX_ENVIRON_BYTES = 64 * 1024;

/** Throws ENV_TOO_LARGE when `environ` exceeds {@link MAX_ENVIRON_BYTES}; `what` names it (`environ`, `task env`). */
export function checkEnvironSize(environ: Record<string, string>, what = 'environ'): void {
  const bytes = Buffer.byteLength(JSON.stringify(environ));
  if (bytes > MAX_ENVIRON_BYTES) {
    throw new CredfwdError(
      'ENV_TOO_LARGE',
      `${what} holds ${Math.ceil(bytes / 1024)} KiB of names and values`,
      `the limit is ${MAX_ENVIRON_BYTES / 1024} KiB in all (JSON-encoded); put large data in a file or object store and pass its location instead`,
    );
  }
}

/** True for names whose values must never be logged. */
export function isSecretLookingName(name: string): boolean {
  return SECRET_LOOKING.test(name);
}

/** Names `environ` may not set in a mode, because credfwd owns them there. */
export function reservedNames(mode: DeliveryMode): ReadonlySet<string> {
  switch (mode) {
    case 'env':
      return new Set<string>([...STATIC_CREDENTIAL_VARS, ...OVERRIDING_IDENTITY_VARS]);
    case 'endpoint':
      return new Set<string>([...STATIC_CREDENTIAL_VARS, ...OVERRIDING_IDENTITY_VARS, ...ENDPOINT_VARS]);
    case 'imds':
      return new Set<string>([...STATIC_CREDENTIAL_VARS, ...OVERRIDING_IDENTITY_VARS, ...IMDS_VARS]);
    case 'process':
      return new Set<string>([...STATIC_CREDENTIAL_VARS, ...OVERRIDING_IDENTITY_VARS, ...PROCESS_VARS]);
    case 'none':
      return new Set<string>();
  }
}

/**
 * Checks custom variables for a mode: names must be shell-safe, in a
 * forwarding mode none may override the forwarded credentials, and all
 * together fit {@link MAX_ENVIRON_BYTES}.
 */
export function validateEnviron(environ: Record<string, string>, mode: DeliveryMode): void {
  const reserved = reservedNames(mode);
  for (const [name, value] of Object.entries(environ)) {
    if (!NAME.test(name)) {
      throw new CredfwdError('ENV_NAME_INVALID', `environ name ${JSON.stringify(name.slice(0, 64))} is not a valid variable name`, 'names must match [A-Za-z_][A-Za-z0-9_]*');
    }
    if (name.startsWith(CREDFWD_VAR_PREFIX)) {
      throw new CredfwdError('ENV_CONFLICT', `environ name ${name} is reserved for credfwd itself`, `choose a name that does not start with ${CREDFWD_VAR_PREFIX}`);
    }
    if (reserved.has(name)) {
      throw new CredfwdError(
        'ENV_CONFLICT',
        `environ sets ${name}, which would override the forwarded credentials`,
        'drop it from environ, or launch with credentials none to use the worker\'s own identity',
      );
    }
    if (typeof value !== 'string' || value.includes('\0')) {
      throw new CredfwdError('CONFIG_INVALID', `environ value of ${name} must be a string without NUL bytes`, 'pass environ as { NAME: "value" }');
    }
  }
  checkEnvironSize(environ);
}

/** Environ with secret-looking values masked, safe to log. */
export function redactEnviron(environ: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(environ).map(([k, v]) => [k, isSecretLookingName(k) ? '[redacted]' : v]));
}

/**
 * The environment local agents start with: the launcher's, minus every AWS_*
 * variable (else null mode would quietly use the launcher's identity) and
 * credfwd's own secrets. PATH, HOME and the locale stay so workloads find tools.
 */
export function cleanLauncherEnv(env: Env): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name.startsWith('AWS_') || name.startsWith(CREDFWD_VAR_PREFIX)) continue;
    clean[name] = value;
  }
  return clean;
}

/** Where the endpoint delivery serves credentials. */
export interface EndpointInfo {
  url: string;
  tokenFile: string;
}

export interface WorkloadEnvInput {
  /** The agent's own environment (the worker's platform identity lives here). */
  base: Env;
  mode: DeliveryMode;
  environ: Record<string, string>;
  region: string | null;
  /** Required in env mode. */
  credentials?: { value: AwsCredentials; expiresAt: Date };
  /** Required in endpoint mode. */
  endpoint?: EndpointInfo;
  /** Required in imds mode: the instance metadata endpoint's base URL (`http://127.0.0.1:PORT/`). */
  imdsUrl?: string;
  /** Required in process mode: the config file (0600) whose default profile runs `credfwd-agent credentials`. */
  configFile?: string;
}

/** Builds a workload's environment exactly as the delivery table of DESIGN.md says. */
export function buildWorkloadEnv(input: WorkloadEnvInput): Record<string, string> {
  const removed = new Set<string>(input.mode === 'none' ? STATIC_CREDENTIAL_VARS : [...STATIC_CREDENTIAL_VARS, ...OVERRIDING_IDENTITY_VARS]);
  // The worker's own instance metadata settings must not send SDKs elsewhere, nor switch the endpoint off.
  if (input.mode === 'imds') for (const name of IMDS_VARS) removed.add(name);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.base)) {
    if (value === undefined || removed.has(name) || name.startsWith(CREDFWD_VAR_PREFIX)) continue;
    env[name] = value;
  }
  // One region for every client on the worker: the CLI v1 reads only AWS_DEFAULT_REGION, the SDKs AWS_REGION first.
  const region = input.environ.AWS_REGION ?? input.environ.AWS_DEFAULT_REGION ?? input.region;
  if (region) for (const name of REGION_VARS) env[name] = region;
  Object.assign(env, input.environ);
  if (input.mode === 'env') {
    if (!input.credentials) throw new Error('env delivery needs credentials');
    const { value, expiresAt } = input.credentials;
    env.AWS_ACCESS_KEY_ID = value.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = value.secretAccessKey;
    if (value.sessionToken) {
      env.AWS_SESSION_TOKEN = value.sessionToken;
      env.AWS_SECURITY_TOKEN = value.sessionToken;
    }
    env.AWS_CREDENTIAL_EXPIRATION = utcIsoString(expiresAt);
  } else if (input.mode === 'endpoint') {
    if (!input.endpoint) throw new Error('endpoint delivery needs an endpoint');
    env.AWS_CONTAINER_CREDENTIALS_FULL_URI = input.endpoint.url;
    env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = input.endpoint.tokenFile;
    env.AWS_EC2_METADATA_DISABLED = 'true';
  } else if (input.mode === 'imds') {
    if (!input.imdsUrl) throw new Error('imds delivery needs an instance metadata endpoint');
    // Every SDK and the CLI read this variable; the mode keeps clients that default to IPv6 on the IPv4 loopback.
    env.AWS_EC2_METADATA_SERVICE_ENDPOINT = input.imdsUrl;
    env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE = 'IPv4';
  } else if (input.mode === 'process') {
    if (!input.configFile) throw new Error('process delivery needs a config file');
    env.AWS_CONFIG_FILE = input.configFile;
    // A [default] in the user's own credentials file would win over the profile's credential_process.
    env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
    // Should the agent fail to answer, the SDK must fail rather than fall back to the worker's own instance role.
    env.AWS_EC2_METADATA_DISABLED = 'true';
  }
  return env;
}
