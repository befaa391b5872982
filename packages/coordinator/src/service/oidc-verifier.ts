import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { CredfwdError } from '@credfwd/shared';
import type { OidcConfig } from './policy-schema.ts';

/** Bound on fetching the issuer's discovery document, as jose bounds its JWKS fetch (5 s). */
const DISCOVERY_TIMEOUT_MS = 5_000;

/** A verified ID token's principal name and groups. */
export interface OidcIdentity {
  name: string;
  groups: string[];
}

function isLoopback(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
}

/** Keys of an issuer must come over HTTPS: a plain-HTTP JWKS lets anyone on the path mint principals. Loopback is for tests and sidecars. */
export function checkIssuerUrl(issuer: string): URL {
  const url = new URL(issuer);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url))) {
    throw new CredfwdError('POLICY_INVALID', `OIDC issuer ${url.origin} is not https://`, 'an issuer\'s keys must come over HTTPS (plain http only on loopback)');
  }
  return url;
}

/**
 * Verifies OIDC ID tokens of one issuer with `jose`: the issuer's discovery
 * document names its JWKS, fetched once and refreshed by jose when a token
 * names an unknown key; the signature, `iss`, `aud` and `exp` are checked.
 */
export class OidcVerifier {
  readonly #config: OidcConfig;
  #keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  constructor(config: OidcConfig) {
    this.#config = config;
    checkIssuerUrl(config.issuer);
  }

  /** The identity in a valid ID token; throws (with jose's code, never the token) otherwise. */
  async verify(token: string): Promise<OidcIdentity> {
    const keys = await this.#jwks();
    const { payload } = await jwtVerify(token, keys, { issuer: this.#config.issuer, audience: this.#config.audience });
    return { name: this.#principalOf(payload), groups: this.#groupsOf(payload) };
  }

  #principalOf(payload: JWTPayload): string {
    const value = payload[this.#config.principalClaim];
    if (typeof value !== 'string' || value.length === 0 || value.length > 256) {
      throw new CredfwdError('ADMIN_AUTH_FAILED', `ID token has no usable ${this.#config.principalClaim} claim`, 'set oidc.principalClaim to a string claim the issuer sends');
    }
    return value;
  }

  #groupsOf(payload: JWTPayload): string[] {
    if (!this.#config.groupsClaim) return [];
    const value = payload[this.#config.groupsClaim];
    if (typeof value === 'string') return [value];
    return Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : [];
  }

  /** The JWKS named by the discovery document; a failed discovery is tried again on the next token. */
  #jwks(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    this.#keys ??= this.#discover().catch((err: unknown) => {
      this.#keys = undefined;
      throw err;
    });
    return this.#keys;
  }

  async #discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const base = this.#config.issuer.replace(/\/$/, '');
    const response = await fetch(`${base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), redirect: 'error' });
    if (!response.ok) throw new Error(`OIDC discovery answered ${response.status}`);
    const discovery = await response.json() as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery §4.3: the document's issuer must be the one asked for.
    if (discovery.issuer !== this.#config.issuer) throw new Error('OIDC discovery names another issuer');
    if (typeof discovery.jwks_uri !== 'string') throw new Error('OIDC discovery has no jwks_uri');
    return createRemoteJWKSet(checkIssuerUrl(discovery.jwks_uri));
  }
}
