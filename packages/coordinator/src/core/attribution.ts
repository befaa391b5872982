import { userInfo } from 'node:os';

/** What ties an STS session to its cluster and principal in CloudTrail. */
export interface Attribution {
  /** `credfwd-<cluster id>`: RoleSessionName, so CloudTrail's `userIdentity.arn` names the cluster. */
  sessionName: string;
  /** GetFederationToken's `Name` (2–32 characters): the same text. */
  federatedName: string;
  /** The principal, in SourceIdentity's alphabet; it follows the session through role chaining. Undefined without a principal. */
  sourceIdentity: string | undefined;
  /** Session tags `credfwd:cluster` and `credfwd:principal`. */
  tags: { Key: string; Value: string }[];
}

/**
 * SourceIdentity: 2–64 of `[A-Za-z0-9_+=,.@-]` (STS refuses anything else,
 * and values starting `aws:`). Of an ARN, its last part: the user or the
 * role session's name, which is who the person is; the tag keeps the whole ARN.
 */
function asSourceIdentity(principal: string): string {
  const name = principal.startsWith('arn:') ? principal.slice(Math.max(principal.lastIndexOf('/'), principal.lastIndexOf(':')) + 1) : principal;
  const cleaned = name.replace(/[^\w+=,.@-]/g, '_').slice(0, 64);
  return cleaned.length >= 2 ? cleaned : `${cleaned}__`.slice(0, 2);
}

/** Session tag values: up to 256 of letters, digits, spaces and `_.:/=+-@`. */
function asTagValue(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
}

/** The attribution of a cluster's sessions; the principal's text is adapted to each field's alphabet, never refused. */
export function attributionOf(clusterId: string, principal: string | undefined): Attribution {
  const name = `credfwd-${clusterId}`;
  return {
    sessionName: name.slice(0, 64),
    federatedName: name.slice(0, 32),
    sourceIdentity: principal === undefined ? undefined : asSourceIdentity(principal),
    tags: [
      { Key: 'credfwd:cluster', Value: asTagValue(clusterId) },
      ...(principal === undefined ? [] : [{ Key: 'credfwd:principal', Value: asTagValue(principal) }]),
    ],
  };
}

/**
 * The local user a launch on this machine is attributed to. userInfo()
 * throws for a uid without a passwd entry (containers run with arbitrary
 * uids), so it falls back to USER, then to the uid itself.
 */
export function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER || `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}
