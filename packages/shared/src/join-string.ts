import { randomBytes } from 'node:crypto';
import { CredfwdError } from './errors.ts';

/** Everything an agent needs to find, trust and prove itself to its coordinator. */
export interface JoinInfo {
  /** `host:port` of every coordinator replica, tried in order. */
  addresses: string[];
  clusterId: string;
  /** 32 random bytes, base64url. A secret: never in argv or logs. */
  token: string;
  /** Lower-case hex SHA-256 of the coordinator certificate (DER). */
  pin: string;
}

const SCHEME = 'credfwd:';
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const CLUSTER_ID = /^[A-Za-z0-9._-]{1,128}$/;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const PIN = /^sha256:([0-9a-f]{64})$/;

/** A fresh join token: 32 random bytes, base64url. */
export function createJoinToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Formats `credfwd://HOST:PORT[,HOST:PORT…]/CLUSTER_ID?token=…&pin=sha256:…`. */
export function formatJoinString(info: JoinInfo): string {
  return `credfwd://${info.addresses.join(',')}/${info.clusterId}?token=${info.token}&pin=sha256:${info.pin}`;
}

function invalid(what: string): CredfwdError {
  // Never echo the input: it holds the token.
  return new CredfwdError(
    'JOIN_STRING_INVALID',
    `join string is invalid: ${what}`,
    'copy the join string again from `credfwd launch` (credfwd://HOST:PORT/CLUSTER?token=…&pin=sha256:…)',
  );
}

/** Parses a join string, naming the part that is wrong without echoing it. */
export function parseJoinString(text: string): JoinInfo {
  const trimmed = text.trim();
  if (!trimmed.startsWith(`${SCHEME}//`)) throw invalid('it must start with credfwd://');
  const rest = trimmed.slice(`${SCHEME}//`.length);
  const slash = rest.indexOf('/');
  const question = rest.indexOf('?');
  if (slash < 0 || question < slash) throw invalid('it has no /CLUSTER_ID?… part');
  const addresses = rest.slice(0, slash).split(',');
  for (const address of addresses) {
    const match = ADDRESS.exec(address);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) throw invalid('an address is not HOST:PORT');
  }
  const clusterId = rest.slice(slash + 1, question);
  if (!CLUSTER_ID.test(clusterId)) throw invalid('the cluster id is malformed');
  const params = new URLSearchParams(rest.slice(question + 1));
  const token = params.get('token') ?? '';
  if (!TOKEN.test(token)) throw invalid('the token is missing or malformed');
  const pin = PIN.exec(params.get('pin') ?? '');
  if (!pin?.[1]) throw invalid('the pin is missing or not sha256:<64 hex digits>');
  return { addresses, clusterId, token, pin: pin[1] };
}
