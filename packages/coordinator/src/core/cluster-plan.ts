import type { AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { CredfwdError, validateEnviron, type DeliveryMode } from '@credfwd/shared';
import { parseCredentialsOption, type CredentialsOption, type CredentialsSpec } from './credentials-spec.ts';
import { parseScope, type Scope } from './scope.ts';
import { buildSessionPolicy } from './session-policy.ts';

/** What a cluster is asked to be. */
export interface ClusterOptions {
  credentials?: CredentialsOption;
  environ?: Record<string, string>;
  /** Region for STS and for workers' AWS_REGION / AWS_DEFAULT_REGION; the launcher's when absent. */
  region?: string;
  /** Requested credential lifetime; STS caps it per action. */
  durationSeconds?: number;
  /** How agents hand credentials to workloads: `env` (default), `endpoint` (a loopback container-credentials endpoint), `imds` (a loopback IMDSv2-compatible endpoint) or `process` (a profile whose credential_process asks the agent). */
  delivery?: 'env' | 'endpoint' | 'imds' | 'process';
  /** Refresh at least this often; by default at half the remaining life. */
  refreshIntervalSeconds?: number;
  /** Launcher identity; the SDK default chain when absent. */
  launcher?: AwsCredentialIdentityProvider;
  /** `s3://bucket[/prefix][:read|:write]` each: the sessions are scoped down to these. */
  scopes?: string[];
  /** An IAM policy document (JSON text) the sessions are scoped down to, with the scopes'. */
  sessionPolicy?: string;
  /** Who the sessions are attributed to (SourceIdentity, `credfwd:principal`); embedded, the local user when absent. */
  principal?: string;
}

/** Credential lifetime asked of STS when a cluster names none. */
export const DEFAULT_DURATION_SECONDS = 3600;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function resolveRegion(region: string | undefined): string | null {
  const chosen = region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? null;
  if (chosen !== null && !REGION.test(chosen)) {
    throw new CredfwdError('CONFIG_INVALID', `region ${JSON.stringify(chosen.slice(0, 64))} is not an AWS region`, 'use a region name such as us-east-1 or eu-west-2');
  }
  return chosen;
}

/** A cluster's options, validated. */
export interface ClusterPlan {
  spec: CredentialsSpec;
  delivery: DeliveryMode;
  environ: Record<string, string>;
  region: string | null;
  scopes: Scope[];
}

/** Validates cluster options without side effects, so bad input fails before anything starts. */
export function planCluster(options: ClusterOptions): ClusterPlan {
  const parsed = parseCredentialsOption(options.credentials);
  const scopes = (options.scopes ?? []).map(parseScope);
  if (parsed.kind === 'none' && (scopes.length > 0 || options.sessionPolicy !== undefined)) {
    throw new CredfwdError('CONFIG_INVALID', 'credentials none forwards nothing to scope down', 'drop --scope and --session-policy, or forward credentials (forward or role:<role ARN>)');
  }
  const sessionPolicy = parsed.kind === 'none' ? undefined : buildSessionPolicy(scopes, options.sessionPolicy ?? (parsed.kind === 'role' ? parsed.sessionPolicy : undefined));
  const spec: CredentialsSpec = parsed.kind === 'none' || sessionPolicy === undefined ? parsed : { ...parsed, sessionPolicy };
  if (options.delivery !== undefined && options.delivery !== 'env' && options.delivery !== 'endpoint' && options.delivery !== 'imds' && options.delivery !== 'process') {
    throw new CredfwdError('CONFIG_INVALID', `delivery ${JSON.stringify(String(options.delivery).slice(0, 40))} is not a delivery mode`, 'use env, endpoint, imds or process');
  }
  const interval = options.refreshIntervalSeconds;
  if (interval !== undefined && (!Number.isInteger(interval) || interval < 1)) {
    throw new CredfwdError('CONFIG_INVALID', `refresh interval ${interval} is not a whole number of seconds`, 'use 1 s or more, for example 15m');
  }
  // Silently dropping a delivery the caller asked for would look like success.
  if (spec.kind === 'none' && options.delivery !== undefined) {
    throw new CredfwdError('CONFIG_INVALID', `delivery ${options.delivery} does not apply: credentials none forwards nothing`, 'drop the delivery option, or forward credentials (forward or role:<role ARN>)');
  }
  const delivery: DeliveryMode = spec.kind === 'none' ? 'none' : (options.delivery ?? 'env');
  const environ = options.environ ?? {};
  validateEnviron(environ, delivery);
  return { spec, delivery, environ, region: resolveRegion(options.region), scopes };
}
