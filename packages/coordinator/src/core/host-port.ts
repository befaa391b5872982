import { CredfwdError } from '@credfwd/shared';

/** Parses `HOST:PORT` (IPv6 in brackets), or throws USAGE naming `what`. */
export function splitHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match?.[1] || port > 65535) throw new CredfwdError('USAGE', `${what} ${JSON.stringify(text)} is not HOST:PORT`, 'for example 127.0.0.1:0 or 0.0.0.0:7443');
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** Listen hosts that mean every interface rather than an address to dial. */
const ANY_ADDRESS = new Set(['0.0.0.0', '::']);

/** True for a listen host that is every interface, which no agent can dial. */
export function isAnyAddress(host: string): boolean {
  return ANY_ADDRESS.has(host);
}
