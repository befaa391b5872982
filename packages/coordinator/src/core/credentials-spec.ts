import { CredfwdError } from '@credfwd/shared';

/** How to assume a role: AssumeRole's own parameters. */
export interface RoleOptions {
  roleArn: string;
  externalId?: string;
  sessionPolicy?: string;
  durationSeconds?: number;
  sourceIdentity?: string;
  tags?: Record<string, string>;
}

/** What to mint for a cluster, after validation. */
export type CredentialsSpec =
  /** `sessionPolicy`: scope-down through GetFederationToken (long-term launcher keys only). */
  | { kind: 'forward'; sessionPolicy?: string }
  | { kind: 'none' }
  | ({ kind: 'role' } & RoleOptions);

/** The `credentials` option of `launchCluster`, as users write it. */
export type CredentialsOption =
  | 'forward'
  | 'none'
  | null
  | `role:${string}`
  | RoleOptions;

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

function checkRoleArn(roleArn: string): string {
  if (!ROLE_ARN.test(roleArn)) {
    throw new CredfwdError(
      'CONFIG_INVALID',
      `role ARN ${JSON.stringify(roleArn.slice(0, 200))} is not an IAM role ARN`,
      'use the form arn:aws:iam::123456789012:role/NAME',
    );
  }
  return roleArn;
}

/** Validates the user's `credentials` option into a {@link CredentialsSpec}. */
export function parseCredentialsOption(option: CredentialsOption | undefined): CredentialsSpec {
  if (option === undefined || option === 'forward') return { kind: 'forward' };
  if (option === null || option === 'none') return { kind: 'none' };
  if (typeof option === 'string') {
    if (option.startsWith('role:')) return { kind: 'role', roleArn: checkRoleArn(option.slice('role:'.length)) };
    throw new CredfwdError('CONFIG_INVALID', `credentials ${JSON.stringify(option.slice(0, 100))} is not a credentials mode`, 'use forward, none or role:<role ARN>');
  }
  if (typeof option !== 'object' || typeof option.roleArn !== 'string') {
    throw new CredfwdError('CONFIG_INVALID', 'credentials must be "forward", null, "none", "role:ARN" or { roleArn, … }', 'see the README section on credential modes');
  }
  return { ...option, kind: 'role', roleArn: checkRoleArn(option.roleArn) };
}
