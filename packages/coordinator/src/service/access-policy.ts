import { CredfwdError } from '@credfwd/shared';
import { globToRegExp, type PolicyDocument, type PolicyRule } from './policy-schema.ts';

/** Who called the admin API. */
export interface Principal {
  name: string;
  groups: string[];
  /** How they proved it: the break-glass shared token, a listed token, or an OIDC ID token. */
  via: 'admin' | 'token' | 'oidc';
}

/** The break-glass principal of the shared admin token. */
export const ADMIN_PRINCIPAL: Principal = { name: 'admin', groups: [], via: 'admin' };

/** What a cluster creation asks for, as the policy judges it. */
export interface CreateAsk {
  mode: 'forward' | 'role' | 'none';
  roleArn?: string;
  durationSeconds: number;
  /** Unknown when the caller did not say. */
  workers?: number;
  /** Canonical scopes (`s3://bucket/prefix:read`). */
  scopes: string[];
}

function ruleName(rule: PolicyRule, index: number): string {
  return rule.name ? `"${rule.name}"` : `rules[${index}]`;
}

function appliesTo(rule: PolicyRule, principal: Principal): boolean {
  return (rule.principals ?? []).some((p) => p === '*' || p === principal.name) || (rule.groups ?? []).some((g) => principal.groups.includes(g));
}

function scopeAllowed(scope: string, patterns: string[]): boolean {
  const cut = scope.lastIndexOf(':');
  const [where, access] = [scope.slice(0, cut), scope.slice(cut + 1)];
  return patterns.some((pattern) => {
    if (pattern === '*') return true;
    const limited = /:(read|write)$/.exec(pattern);
    const glob = limited ? pattern.slice(0, limited.index) : pattern;
    // A `:read` pattern allows read scopes only; `:write` or none allows both.
    if (limited?.[1] === 'read' && access === 'write') return false;
    return globToRegExp(glob).test(where);
  });
}

/** What in `ask` the rule does not allow, one phrase each; empty when it allows all of it. */
function refusals(rule: PolicyRule, ask: CreateAsk): string[] {
  const out: string[] = [];
  if (rule.modes && !rule.modes.includes(ask.mode)) out.push(`mode ${ask.mode} is not one of [${rule.modes.join(', ')}]`);
  if (ask.mode === 'role' && rule.roles && !rule.roles.some((p) => globToRegExp(p).test(ask.roleArn ?? ''))) out.push(`role ${ask.roleArn} matches none of its role patterns`);
  if (rule.maxDurationSeconds !== undefined && ask.durationSeconds > rule.maxDurationSeconds) out.push(`duration ${ask.durationSeconds}s is over its maxDurationSeconds ${rule.maxDurationSeconds}`);
  if (rule.maxWorkers !== undefined) {
    if (ask.workers === undefined) out.push(`it limits workers to ${rule.maxWorkers} and the request does not say how many`);
    else if (ask.workers > rule.maxWorkers) out.push(`${ask.workers} workers is over its maxWorkers ${rule.maxWorkers}`);
  }
  if (rule.scopes && ask.mode !== 'none') {
    if (ask.scopes.length === 0) out.push('it requires scoped sessions and the request has no scope');
    const outside = ask.scopes.filter((s) => !scopeAllowed(s, rule.scopes!));
    if (outside.length > 0) out.push(`scope ${outside.join(', ')} is outside its scopes`);
  }
  return out;
}

/**
 * The policy of `credfwd serve --policy`: a request is allowed when some
 * rule that applies to its principal allows all of it (rules only allow, as
 * Vault's do); the shared admin token is break-glass and passes every rule.
 * Without a policy every principal may do everything, as before policies.
 */
export class AccessPolicy {
  readonly #doc: PolicyDocument | undefined;

  constructor(doc: PolicyDocument | undefined) {
    this.#doc = doc;
  }

  /** False when the service runs without `--policy`. */
  get governed(): boolean {
    return this.#doc !== undefined;
  }

  /** Throws POLICY_DENIED naming the closest rule (the applicable one with the fewest refusals) unless some rule allows `ask`. */
  authorizeCreate(principal: Principal, ask: CreateAsk): void {
    if (!this.#doc || principal.via === 'admin') return;
    let closest: { name: string; reasons: string[] } | undefined;
    for (const [index, rule] of this.#doc.rules.entries()) {
      if (!appliesTo(rule, principal)) continue;
      const reasons = refusals(rule, ask);
      if (reasons.length === 0) return;
      if (!closest || reasons.length < closest.reasons.length) closest = { name: ruleName(rule, index), reasons };
    }
    if (!closest) {
      throw new CredfwdError('POLICY_DENIED', `no rule of the policy applies to principal ${principal.name}${principal.groups.length ? ` (groups ${principal.groups.join(', ')})` : ''}`, 'ask the service\'s operators for a rule that names you or your group');
    }
    throw new CredfwdError('POLICY_DENIED', `denied by rule ${closest.name}: ${closest.reasons.join('; ')}`, 'ask within what the rule allows, or ask the service\'s operators to change the policy');
  }

  /**
   * Under a policy a cluster belongs to whoever created it: others, except
   * the break-glass admin, may not see, run on, refresh or delete it, or
   * one principal could use another's role through a cluster.
   */
  authorizeOn(principal: Principal, owner: string | null, clusterId: string): void {
    if (!this.#doc || principal.via === 'admin' || owner === principal.name) return;
    throw new CredfwdError('POLICY_DENIED', `cluster ${clusterId} belongs to another principal`, 'only its creator and the break-glass admin may act on a cluster');
  }

  /** A deny on every session of a role ends other principals' clusters too: under a policy, only the break-glass admin may. */
  authorizeRevokeAll(principal: Principal, roleArn: string): void {
    if (!this.#doc || principal.via === 'admin') return;
    throw new CredfwdError('POLICY_DENIED', `revoking every session of ${roleArn} is for the break-glass admin`, 'revoke your own cluster without --all-sessions, or ask the service\'s operators');
  }

  /** Whether `principal` may see a cluster in a list (the same rule as {@link authorizeOn}). */
  mayAct(principal: Principal, owner: string | null): boolean {
    return !this.#doc || principal.via === 'admin' || owner === principal.name;
  }
}
