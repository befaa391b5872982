import { z } from 'zod';

const NAME = /^[A-Za-z0-9_.@+=,-]{1,64}$/;
const name = z.string().regex(NAME, 'a name of 1–64 letters, digits or _.@+=,-');

const principalSchema = z.strictObject({
  /** Lower-case hex SHA-256 of the principal's bearer token: the policy file holds no secret. */
  tokenSha256: z.string().regex(/^[0-9a-f]{64}$/, 'the lower-case hex SHA-256 of the token (sha256sum)'),
  groups: z.array(name).default([]),
});

const oidcSchema = z.strictObject({
  issuer: z.url(),
  audience: z.string().min(1),
  /** The claim that names the principal; `sub` unless told. */
  principalClaim: z.string().min(1).default('sub'),
  /** The claim that lists the principal's groups (an array of strings); no groups when absent. */
  groupsClaim: z.string().min(1).optional(),
});

/** One allow rule: everything it lists must hold for a request to pass through it. */
const ruleSchema = z.strictObject({
  /** How POLICY_DENIED names the rule; `rules[N]` when absent. */
  name: z.string().min(1).max(100).optional(),
  /** Who the rule is for: principals by name (`*` for everyone) or members of groups. */
  principals: z.array(z.union([name, z.literal('*')])).optional(),
  groups: z.array(name).optional(),
  modes: z.array(z.enum(['forward', 'role', 'none'])).optional(),
  /** Role ARN patterns (`*` matches any run of characters, as SingleStore's delegated entities). */
  roles: z.array(z.string().min(1)).optional(),
  maxDurationSeconds: z.number().int().positive().optional(),
  maxWorkers: z.number().int().positive().optional(),
  /** `s3://bucket/prefix*` patterns, optionally `:read`: every scope of a request must fall under one, and a request must be scoped. */
  scopes: z.array(z.string().min(1)).optional(),
});

/** A policy file, as `credfwd serve --policy` reads it. */
export const policySchema = z.strictObject({
  principals: z.record(name, principalSchema).default({}),
  oidc: oidcSchema.optional(),
  rules: z.array(ruleSchema).default([]),
});

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyRule = z.infer<typeof ruleSchema>;
export type OidcConfig = z.infer<typeof oidcSchema>;

/** A problem at a place in the file: the path of keys down to it, and what is wrong. */
export interface PolicyIssue {
  path: (string | number)[];
  message: string;
}

/** A glob with `*` as the only wildcard, as a regular expression. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`);
}

/** True when a segment pattern (no `:` in it) may match some text that `valid` accepts, for the few shapes ARNs take. */
function segmentCanMatch(pattern: string, valid: RegExp, samples: string[]): boolean {
  if (!pattern.includes('*')) return valid.test(pattern);
  // With a wildcard, the fixed parts must fit: try the samples, then the pattern with each * as the sample's tail.
  const re = globToRegExp(pattern);
  return samples.some((s) => re.test(s)) || valid.test(pattern.replaceAll('*', ''));
}

/**
 * Whether a role pattern can match any IAM role ARN at all: a pattern that
 * cannot (a typo in the account, `user/` for `role/`) would deny quietly
 * forever, so it is refused when the policy loads.
 */
export function rolePatternCanMatch(pattern: string): boolean {
  if (pattern === '*') return true;
  const parts = pattern.split(':');
  if (parts.length < 6) return false;
  const [arn, partition, service, region, account, ...resource] = parts as [string, string, string, string, string, ...string[]];
  return segmentCanMatch(arn, /^arn$/, ['arn'])
    && segmentCanMatch(partition, /^aws(-[a-z]+)*$/, ['aws', 'aws-cn', 'aws-us-gov'])
    && segmentCanMatch(service, /^iam$/, ['iam'])
    && (region === '' || region === '*')
    && segmentCanMatch(account, /^\d{12}$/, ['123456789012'])
    && (/^role\//.test(resource.join(':')) || /^(r(o(l(e)?)?)?)?\*/.test(resource.join(':')));
}

/** Whether a scope pattern can match any scope: it names S3, and an access if any. */
export function scopePatternCanMatch(pattern: string): boolean {
  return /^s3:\/\/[a-z0-9*][a-z0-9.*/_=+@!'()&$,;-]*(?::(read|write))?$/i.test(pattern) || pattern === '*';
}

/**
 * Checks what the schema cannot: patterns that match nothing, and rules that
 * could never allow anything (they name nobody, or leave no mode a request
 * could use). Such a rule is almost always a mistake, and a silent one.
 */
export function semanticIssues(doc: PolicyDocument): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  doc.rules.forEach((rule, i) => {
    const at = (...path: (string | number)[]): (string | number)[] => ['rules', i, ...path];
    (rule.roles ?? []).forEach((pattern, j) => {
      if (!rolePatternCanMatch(pattern)) issues.push({ path: at('roles', j), message: `role pattern ${JSON.stringify(pattern.slice(0, 200))} matches no IAM role ARN (arn:aws:iam::123456789012:role/NAME, * for any run of characters)` });
    });
    (rule.scopes ?? []).forEach((pattern, j) => {
      if (!scopePatternCanMatch(pattern)) issues.push({ path: at('scopes', j), message: `scope pattern ${JSON.stringify(pattern.slice(0, 200))} matches no scope (s3://bucket/prefix*, optionally :read or :write)` });
    });
    const who = [...(rule.principals ?? []), ...(rule.groups ?? [])];
    if (who.length === 0) issues.push({ path: at(), message: 'the rule names no principal and no group, so it allows nothing (principals: ["*"] is everyone)' });
    const modes = (rule.modes ?? ['forward', 'role', 'none']).filter((mode) => {
      if (mode === 'role' && rule.roles?.length === 0) return false;
      // A rule that lists scopes needs every session scoped; an empty list leaves no scope to use.
      if (mode !== 'none' && rule.scopes?.length === 0) return false;
      return true;
    });
    if (modes.length === 0) issues.push({ path: at('modes'), message: 'the rule allows no mode (an empty modes, roles or scopes list leaves none), so it denies everything' });
  });
  return issues;
}
