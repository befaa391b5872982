import { CredfwdError } from '@credfwd/shared';
import type { Scope } from './scope.ts';

/** One IAM policy statement, as much of it as a session policy needs. */
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const READ = ['s3:GetObject', 's3:GetObjectVersion'];
const WRITE = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'];

/** The statements that let a session reach one scope, and nothing else of S3. */
function statementsFor(scope: Scope): Statement[] {
  const objects = `arn:aws:s3:::${scope.bucket}/${scope.prefix}*`;
  return [
    {
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: `arn:aws:s3:::${scope.bucket}`,
      // Listing is limited to the prefix, as in AWS's own "home folder" examples.
      ...(scope.prefix ? { Condition: { StringLike: { 's3:prefix': [`${scope.prefix}*`] } } } : {}),
    },
    { Effect: 'Allow', Action: scope.access === 'write' ? [...READ, ...WRITE] : READ, Resource: objects },
  ];
}

/** Checks a user's session policy is an IAM policy document; returns its statements. */
function statementsOf(text: string, source: string): Statement[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CredfwdError('CONFIG_INVALID', `${source} is not JSON`, 'write an IAM policy document: {"Version": "2012-10-17", "Statement": [...]}');
  }
  const statements = (doc as { Statement?: unknown } | null)?.Statement;
  const list = Array.isArray(statements) ? statements : statements && typeof statements === 'object' ? [statements] : undefined;
  if (!list || list.length === 0 || !list.every((s) => s && typeof s === 'object' && 'Effect' in s)) {
    throw new CredfwdError('CONFIG_INVALID', `${source} has no Statement with an Effect`, 'write an IAM policy document: {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", ...}]}');
  }
  return list as Statement[];
}

/**
 * The session policy of a scoped-down cluster: the statements of its scopes
 * and of the user's `--session-policy`, in one document (STS takes one).
 * A session's permissions are the intersection of its role's (or user's)
 * and this; undefined when neither was asked for.
 */
export function buildSessionPolicy(scopes: Scope[], userPolicy?: string): string | undefined {
  if (scopes.length === 0 && userPolicy === undefined) return undefined;
  const statements = [...scopes.flatMap(statementsFor), ...(userPolicy !== undefined ? statementsOf(userPolicy, 'the session policy') : [])];
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}
