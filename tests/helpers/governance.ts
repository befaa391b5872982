import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { AdminClient } from '@credfwd/coordinator';
import { CREDFWD_BIN, isolatedEnv } from './credfwd-cli.ts';
import { freePort } from './free-port.ts';
import type { ReplicaProcess, ServiceSecrets } from './replicas.ts';
import { startService } from './service.ts';

/** A real OIDC issuer on loopback: discovery, a JWKS, and ID tokens it signs. */
export interface OidcIssuer {
  /** `http://127.0.0.1:PORT`: the `iss` of its tokens. */
  issuer: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** An ID token for `claims`, signed with the issuer's key (or `key`: a key the JWKS does not hold). */
  sign(claims: Record<string, unknown>, options: { audience: string; issuer?: string; expiresAt?: Date; key?: 'unknown' }): Promise<string>;
  stop(): Promise<void>;
}

async function keyPair(kid: string): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** Starts an issuer serving `/.well-known/openid-configuration` and `/jwks` as an IdP does. */
export async function startOidcIssuer(): Promise<OidcIssuer> {
  const known = await keyPair(randomUUID());
  const stranger = await keyPair(randomUUID());
  let fetches = 0;
  let issuer = '';
  const server = createServer((req, res) => {
    const json = (body: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/.well-known/openid-configuration') return json({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
    if (req.url === '/jwks') {
      fetches++;
      return json({ keys: [known.jwk] });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksFetches: () => fetches,
    sign: async (claims, options) => {
      const pair = options.key === 'unknown' ? stranger : known;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: pair.jwk.kid! })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience)
        .setIssuedAt()
        .setExpirationTime(options.expiresAt ?? new Date(Date.now() + 600_000))
        .sign(pair.privateKey);
    },
    stop: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** A bearer token for a policy principal, and the SHA-256 the policy file lists instead of it. */
export function principalToken(): { token: string; sha256: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, sha256: createHash('sha256').update(token).digest('hex') };
}

export interface GovernedReplicaSpec {
  redisUrl: string;
  prefix: string;
  secrets: ServiceSecrets;
  env?: Record<string, string>;
  /** Extra `credfwd serve` flags: `--policy F`, `--audit-log F`. */
  args: string[];
}

/** `credfwd serve` with governance flags, as `startReplica` starts one otherwise. */
export async function startGovernedReplica(spec: GovernedReplicaSpec): Promise<ReplicaProcess> {
  const port = await freePort();
  const service = await startService({
    command: process.execPath,
    args: ['--', CREDFWD_BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--redis', spec.redisUrl, '--redis-prefix', spec.prefix, ...spec.args],
    env: isolatedEnv({ CREDFWD_STATE_KEY: spec.secrets.stateKey, CREDFWD_ADMIN_TOKEN: spec.secrets.adminToken, CREDFWD_LOG_LEVEL: 'info', ...spec.env }),
    ready: /^pin sha256:[0-9a-f]{64}$/,
    graceMs: 2_000,
  });
  const pin = service.readyLine.slice('pin sha256:'.length);
  const url = `https://127.0.0.1:${port}`;
  const admin = new AdminClient({ url, pin, adminToken: spec.secrets.adminToken });
  const replicaId = ((await admin.request('GET', '/healthz')).body as { replica: string }).replica;
  return {
    service, url, address: `127.0.0.1:${port}`, pin, replicaId, admin,
    kill: async () => {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        const gone = new Promise((resolve) => service.child.once('exit', resolve));
        service.child.kill('SIGKILL');
        await gone;
      }
      await service.stop();
    },
  };
}
