import { createHash } from 'node:crypto';
import { errorMessage, isCredfwdError, secretsEqual, type Logger } from '@credfwd/shared';
import { AccessPolicy, ADMIN_PRINCIPAL, type Principal } from './access-policy.ts';
import { OidcVerifier } from './oidc-verifier.ts';
import { readPolicyFile } from './policy-file.ts';
import type { PolicyDocument } from './policy-schema.ts';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** One loaded policy and what it takes to authenticate against it. */
interface Loaded {
  policy: AccessPolicy;
  tokens: { digest: Buffer; name: string; groups: string[] }[];
  oidc: OidcVerifier | undefined;
}

function fromDocument(doc: PolicyDocument | undefined): Loaded {
  return {
    policy: new AccessPolicy(doc),
    tokens: Object.entries(doc?.principals ?? {}).map(([name, p]) => ({ digest: Buffer.from(p.tokenSha256, 'hex'), name, groups: p.groups })),
    oidc: doc?.oidc ? new OidcVerifier(doc.oidc) : undefined,
  };
}

const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/**
 * Who may call the admin API, and what they may do: the policy file of
 * `credfwd serve --policy` (principals, OIDC issuer, rules) and the
 * break-glass admin token. A reload that fails keeps the policy in force.
 */
export class Governance {
  readonly #file: string | undefined;
  readonly #admin: Buffer;
  readonly #logger: Logger;
  #loaded: Loaded;

  /** Reads and checks the policy file; throws POLICY_INVALID, so a replica never starts on a bad one. */
  constructor(options: { policyFile?: string; adminToken: string; logger: Logger }) {
    this.#file = options.policyFile;
    this.#admin = digest(options.adminToken);
    this.#logger = options.logger;
    this.#loaded = fromDocument(this.#file === undefined ? undefined : readPolicyFile(this.#file));
    if (!this.#loaded.policy.governed) options.logger.warn('no --policy: every principal may do everything (any mode, any role, any duration)');
  }

  get policy(): AccessPolicy {
    return this.#loaded.policy;
  }

  /** Reads the policy file again; on failure keeps the one in force and throws why (POLICY_INVALID). */
  reload(): void {
    if (this.#file === undefined) return;
    this.#loaded = fromDocument(readPolicyFile(this.#file));
  }

  /**
   * The principal a bearer token proves, or undefined (401). Digests are
   * compared in constant time and every listed one is compared, so timing
   * tells nothing of which matched; an ID token is tried only when it looks
   * like one and an issuer is configured.
   */
  async authenticate(token: string): Promise<Principal | undefined> {
    const given = digest(token);
    if (secretsEqual(given, this.#admin)) return ADMIN_PRINCIPAL;
    const { tokens, oidc } = this.#loaded;
    let found: Principal | undefined;
    for (const entry of tokens) {
      if (secretsEqual(given, entry.digest) && !found) found = { name: entry.name, groups: entry.groups, via: 'token' };
    }
    if (found || !oidc || !JWT_SHAPE.test(token)) return found;
    try {
      return { ...(await oidc.verify(token)), via: 'oidc' };
    } catch (err) {
      // The reason to the log (jose's code: expired, audience, unknown key), never the token; the caller learns only 401.
      const reason = isCredfwdError(err) ? err.message : (err as { code?: string }).code ?? (errorMessage(err));
      this.#logger.warn({ reason }, 'ID token refused');
      return undefined;
    }
  }
}
