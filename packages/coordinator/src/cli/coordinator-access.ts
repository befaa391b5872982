import { AdminClient } from '../client/index.ts';
import { usage } from './cli-errors.ts';

/** How a command reaches a service: its URL and pin from flags (or the pin's environment variable), the token from the environment only. */
export interface CoordinatorAccess {
  url: string;
  /** Hex SHA-256 of the service certificate, without `sha256:`. */
  pin: string;
  adminToken: string;
}

/**
 * The pin (`--coordinator-pin` or CREDFWD_COORDINATOR_PIN) and the token
 * (CREDFWD_ADMIN_TOKEN: a listed principal's token, an OIDC ID token or the
 * break-glass admin token; never taken on the command line, where `ps` shows it).
 */
export function coordinatorAccess(url: string, pinFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): CoordinatorAccess {
  const pin = /^sha256:([0-9a-f]{64})$/.exec(pinFlag ?? env.CREDFWD_COORDINATOR_PIN ?? '')?.[1];
  if (!pin) throw usage('--coordinator needs the service\'s certificate pin', 'pass --coordinator-pin sha256:… or set CREDFWD_COORDINATOR_PIN, as credfwd serve printed it');
  const adminToken = env.CREDFWD_ADMIN_TOKEN;
  if (!adminToken) throw usage('--coordinator needs a token', 'set CREDFWD_ADMIN_TOKEN (your token, an ID token or the admin token); it is never taken on the command line');
  return { url, pin, adminToken };
}

/** An admin client for `access`. */
export function adminClientFor(access: CoordinatorAccess): AdminClient {
  return new AdminClient({ url: access.url, pin: access.pin, adminToken: access.adminToken });
}
