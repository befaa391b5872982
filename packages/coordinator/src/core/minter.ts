import { AssumeRoleCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { CredfwdError, type AwsCredentials, type Logger } from '@credfwd/shared';
import type { CredentialsSpec } from './credentials-spec.ts';
import { isTemporary, resolveLauncherCredentials } from './launcher-identity.ts';
import { isSessionCredentialsRefusal, mapStsError } from './sts-errors.ts';

/** Credentials minted for one cluster, with where they came from. */
export interface Minted {
  credentials: AwsCredentials;
  expiresAt: Date;
  source: 'get-session-token' | 'passthrough' | 'assume-role';
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

/**
 * `forward`: long-term keys are exchanged with GetSessionToken so they never
 * leave the launcher; temporary credentials are passed through with their
 * real expiry, since STS refuses GetSessionToken for them.
 */
function forwardMinter(options: MinterOptions): Minter {
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
  return {
    async mint() {
      const launcher = await resolveLauncherCredentials(options.launcher);
      const client = stsClient(options, launcher);
      try {
        const out = await client.send(new AssumeRoleCommand({
          RoleArn: spec.roleArn,
          RoleSessionName: `credfwd-${options.clusterId}`.slice(0, 64),
          DurationSeconds: duration,
          ExternalId: spec.externalId,
          Policy: spec.sessionPolicy,
          SourceIdentity: spec.sourceIdentity,
          Tags: spec.tags ? Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value })) : undefined,
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
      return forwardMinter(options);
    case 'role':
      return roleMinter(options, spec);
  }
}
