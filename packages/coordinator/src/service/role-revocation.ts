import { GetRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CredfwdError } from '@credfwd/shared';

/** What to revoke: one cluster's sessions of a role, or every session of the role issued before now. */
export interface RevokeTarget {
  roleArn: string;
  clusterId: string;
  allSessions: boolean;
}

/** The inline policy a revocation put on the role. */
export interface Revocation {
  roleName: string;
  policyName: string;
}

function roleNameOf(roleArn: string): string {
  // arn:aws:iam::123456789012:role/path/name: IAM's RoleName is the last segment.
  return roleArn.slice(roleArn.lastIndexOf('/') + 1);
}

/**
 * The deny that ends sessions already handed out. For one cluster: every
 * session whose `aws:userid` is the role's id and the cluster's session
 * name (credfwd names every session of a cluster so). For all sessions:
 * those issued before now (`aws:TokenIssueTime`), as the console's "Revoke
 * active sessions" does.
 */
function denyPolicy(target: RevokeTarget, roleId: string, now: Date): string {
  const condition = target.allSessions
    ? { DateLessThan: { 'aws:TokenIssueTime': now.toISOString() } }
    : { StringLike: { 'aws:userid': `${roleId}:credfwd-${target.clusterId}` } };
  return JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: '*', Resource: '*', Condition: condition }] });
}

/**
 * Puts the revoking inline policy on the role, with the service's own
 * identity (which needs `iam:GetRole` and `iam:PutRolePolicy` on it). A
 * failure is REVOKE_FAILED naming what IAM said; it holds no secret.
 */
export async function revokeRoleSessions(target: RevokeTarget, region: string | null, now: Date = new Date()): Promise<Revocation> {
  const roleName = roleNameOf(target.roleArn);
  const policyName = target.allSessions ? 'credfwd-revoke-older-sessions' : `credfwd-revoke-${target.clusterId}`;
  // IAM is global; the SDK reads AWS_ENDPOINT_URL_IAM / AWS_ENDPOINT_URL itself.
  const client = new IAMClient({ region: region ?? 'us-east-1' });
  try {
    const role = await client.send(new GetRoleCommand({ RoleName: roleName }));
    const roleId = role.Role?.RoleId;
    if (!roleId) throw new Error('IAM GetRole answered without a RoleId');
    await client.send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: denyPolicy(target, roleId, now) }));
    return { roleName, policyName };
  } catch (cause) {
    const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    throw new CredfwdError('REVOKE_FAILED', `could not put the revoking policy on role ${roleName}: ${what}`, 'the service\'s identity needs iam:GetRole and iam:PutRolePolicy on the role; the cluster itself was deleted and its agents revoked', { cause });
  } finally {
    client.destroy();
  }
}
