import { AssumeRoleCommand, GetCallerIdentityCommand, GetFederationTokenCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { CredfwdError, type AwsCredentials, type Logger } from '@credfwd/shared';
import { attributionOf } from './attribution.ts';
import type { CredentialsSpec } from './credentials-spec.ts';
import { isTemporary, resolveLauncherCredentials } from './launcher-identity.ts';
import { isSessionCredentialsRefusal, mapStsError } from './sts-errors.ts';

/** Credentials minted for one cluster, with where they came from. */
export interface Minted {
  credentials: AwsCredentials;
  expiresAt: Date;
  source: 'get-session-token' | 'get-federation-token' | 'passthrough' | 'assume-role';
}

/** Mints credentials for one cluster; each call is one STS call at most. */
export interface Minter {
  mint(): Promise<Minted>;
}

export interface MinterOptions {
  clusterId: string;
  /** Requested lifetime; STS may cap it. */
  durationSeconds: number;
  /** Region for STS (regional endpoints); null lets the SDK decide. */
  region: string | null;
  logger: Logger;
  /** Launcher identity; the SDK default chain when absent. */
  launcher?: AwsCredentialIdentityProvider;
  /** Who the sessions are attributed to (SourceIdentity, session tag `credfwd:principal`): the service's principal. */
  principal?: string;
  /** Without a principal: attribute the sessions to the launcher's own ARN (an embedded launch). */
  attributeToLauncher?: boolean;
}

/**
 * The principal of a minter's sessions: the one given, or the launcher's
 * ARN, asked of STS once per cluster (GetCallerIdentity needs no
 * permission) with the client about to mint.
 */
function principalOf(options: MinterOptions): (client: STSClient) => Promise<string | undefined> {
  const given = options.principal;
  if (given !== undefined || !options.attributeToLauncher) return async () => given;
  let arn: string | undefined;
  return async (client) => {
    try {
      arn ??= (await client.send(new GetCallerIdentityCommand({}))).Arn;
    } catch (err) {
      throw mapStsError(err, 'GetCallerIdentity');
    }
    return arn;
  };
}

/**
 * Temporary launcher credentials whose source gave no expiry (plain env vars
 * without AWS_CREDENTIAL_EXPIRATION) are forwarded with this short horizon,
 * so workers come back for them rather than trusting them indefinitely.
 */
export const UNKNOWN_EXPIRY_SECONDS = 900;

const GET_SESSION_TOKEN_SECONDS = { min: 900, max: 129_600 };
const ASSUME_ROLE_SECONDS = { min: 900, max: 43_200 };

function checkDuration(seconds: number, range: { min: number; max: number }, action: string): number {
  if (!Number.isInteger(seconds) || seconds < range.min || seconds > range.max) {
    throw new CredfwdError('CONFIG_INVALID', `duration ${seconds}s is outside what STS ${action} accepts`, `use ${range.min}s to ${range.max}s (15m to ${range.max / 3600}h)`);
  }
  return seconds;
}

function stsClient(options: MinterOptions, launcher: AwsCredentialIdentity): STSClient {
  // The SDK reads AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL itself.
  return new STSClient({ ...(options.region ? { region: options.region } : { region: 'us-east-1' }), credentials: launcher });
}

function fromSts(c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string; Expiration?: Date } | undefined, action: string): Minted['credentials'] & { expiresAt: Date } {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.Expiration) {
    throw new CredfwdError('STS_FAILED', `STS ${action} answered without credentials`, 'check the STS endpoint (AWS_ENDPOINT_URL_STS) points at STS');
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
    expiration: c.Expiration.toISOString(),
    expiresAt: c.Expiration,
  };
}

function split(c: AwsCredentials & { expiresAt: Date }, source: Minted['source']): Minted {
  const { expiresAt, ...credentials } = c;
  return { credentials, expiresAt, source };
}

function passthrough(launcher: AwsCredentialIdentity, logger: Logger): Minted {
  let expiresAt = launcher.expiration;
  if (!expiresAt) {
    expiresAt = new Date(Date.now() + UNKNOWN_EXPIRY_SECONDS * 1000);
    logger.warn({ assumedSeconds: UNKNOWN_EXPIRY_SECONDS }, 'launcher credentials are temporary but carry no expiry; forwarding them with a short horizon');
  }
  return split({
    accessKeyId: launcher.accessKeyId,
    secretAccessKey: launcher.secretAccessKey,
    ...(launcher.sessionToken ? { sessionToken: launcher.sessionToken } : {}),
    expiration: expiresAt.toISOString(),
    expiresAt,
  }, 'passthrough');
}

/** Temporary launcher credentials cannot be narrowed: STS has no call that takes them and a policy. */
function scopeUnsupported(): CredfwdError {
  return new CredfwdError('SCOPE_UNSUPPORTED', 'forwarded temporary credentials (SSO, a role, IRSA) cannot be scoped down', 'use role mode (--credentials role:<role ARN>), whose AssumeRole takes the session policy, or launch with long-term keys');
}

/**
 * `forward` scoped down: long-term keys call GetFederationToken with the
 * session policy, so workers act as a federated user of the launcher with
 * at most what the policy allows.
 */
function federationMinter(options: MinterOptions, sessionPolicy: string): Minter {
  const duration = checkDuration(options.durationSeconds, GET_SESSION_TOKEN_SECONDS, 'GetFederationToken');
  const principal = principalOf(options);
  return {
    async mint() {
      const launcher = await resolveLauncherCredentials(options.launcher);
      if (isTemporary(launcher)) throw scopeUnsupported();
      const client = stsClient(options, launcher);
      try {
        const attribution = attributionOf(options.clusterId, await principal(client));
        const out = await client.send(new GetFederationTokenCommand({ Name: attribution.federatedName, Policy: sessionPolicy, DurationSeconds: duration, Tags: attribution.tags }));
        return split(fromSts(out.Credentials, 'GetFederationToken'), 'get-federation-token');
      } catch (err) {
        if (isSessionCredentialsRefusal(err)) throw scopeUnsupported();
        throw err instanceof CredfwdError ? err : mapStsError(err, 'GetFederationToken');
      } finally {
        client.destroy();
      }
    },
  };
}

/**
 * `forward`: long-term keys are exchanged with GetSessionToken so they never
 * leave the launcher; temporary credentials are passed through with their
 * real expiry, since STS refuses GetSessionToken for them.
 */
function forwardMinter(options: MinterOptions, sessionPolicy: string | undefined): Minter {
  if (sessionPolicy !== undefined) return federationMinter(options, sessionPolicy);
  const duration = checkDuration(options.durationSeconds, GET_SESSION_TOKEN_SECONDS, 'GetSessionToken');
  return {
    async mint() {
      const launcher = await resolveLauncherCredentials(options.launcher);
      if (isTemporary(launcher)) return passthrough(launcher, options.logger);
      const client = stsClient(options, launcher);
      try {
        const out = await client.send(new GetSessionTokenCommand({ DurationSeconds: duration }));
        return split(fromSts(out.Credentials, 'GetSessionToken'), 'get-session-token');
      } catch (err) {
        if (isSessionCredentialsRefusal(err)) return passthrough(launcher, options.logger);
        throw err instanceof CredfwdError ? err : mapStsError(err, 'GetSessionToken');
      } finally {
        client.destroy();
      }
    },
  };
}

function roleMinter(options: MinterOptions, spec: Extract<CredentialsSpec, { kind: 'role' }>): Minter {
  const duration = checkDuration(spec.durationSeconds ?? options.durationSeconds, ASSUME_ROLE_SECONDS, 'AssumeRole');
  const principal = principalOf(options);
  return {
    async mint() {
      const launcher = await resolveLauncherCredentials(options.launcher);
      const client = stsClient(options, launcher);
      try {
        const attribution = attributionOf(options.clusterId, await principal(client));
        // The caller's own tags first; credfwd's keys win, so a launcher cannot pose as another cluster or principal.
        const tags = new Map([...Object.entries(spec.tags ?? {}), ...attribution.tags.map((t) => [t.Key, t.Value] as const)]);
        const out = await client.send(new AssumeRoleCommand({
          RoleArn: spec.roleArn,
          RoleSessionName: attribution.sessionName,
          DurationSeconds: duration,
          ExternalId: spec.externalId,
          Policy: spec.sessionPolicy,
          SourceIdentity: spec.sourceIdentity ?? attribution.sourceIdentity,
          Tags: tags.size > 0 ? [...tags].map(([Key, Value]) => ({ Key, Value })) : undefined,
        }));
        return split(fromSts(out.Credentials, 'AssumeRole'), 'assume-role');
      } catch (err) {
        throw err instanceof CredfwdError ? err : mapStsError(err, 'AssumeRole');
      } finally {
        client.destroy();
      }
    },
  };
}

/** The minting strategy for a spec, or null when nothing is forwarded. */
export function createMinter(spec: CredentialsSpec, options: MinterOptions): Minter | null {
  switch (spec.kind) {
    case 'none':
      return null;
    case 'forward':
      return forwardMinter(options, spec.sessionPolicy);
    case 'role':
      return roleMinter(options, spec);
  }
}
