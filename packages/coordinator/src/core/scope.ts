import { CredfwdError } from '@credfwd/shared';

/** One `--scope`: what a scoped-down session may reach. */
export interface Scope {
  bucket: string;
  /** Key prefix without a leading slash; empty for the whole bucket. */
  prefix: string;
  /** `read` lists and gets; `write` also puts and deletes. */
  access: 'read' | 'write';
}

// S3's bucket naming rules (3–63 lower-case letters, digits, dots, hyphens), loosely: S3 itself refuses the rest.
const SCOPE = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/([^:*?]*))?(?::(read|write))?$/;

/**
 * Parses `s3://bucket[/prefix][:read|:write]`. Read is the default: a
 * scope that forgot its access gets the lesser one, as IAM would want.
 */
export function parseScope(text: string): Scope {
  const match = SCOPE.exec(text);
  if (!match) {
    throw new CredfwdError('CONFIG_INVALID', `scope ${JSON.stringify(text.slice(0, 200))} is not s3://bucket[/prefix][:read|:write]`, 'for example --scope s3://ml-data/team-a/:write (wildcards are for policies, not scopes)');
  }
  return { bucket: match[1]!, prefix: match[2] ?? '', access: (match[3] as Scope['access'] | undefined) ?? 'read' };
}

/** The canonical text of a scope, as the audit log and the admin API show it. */
export function formatScope(scope: Scope): string {
  return `s3://${scope.bucket}${scope.prefix ? `/${scope.prefix}` : ''}:${scope.access}`;
}
