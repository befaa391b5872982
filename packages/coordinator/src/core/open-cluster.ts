import { randomBytes } from 'node:crypto';
import { createJoinToken, tokenVerifier } from '@credfwd/shared';

/** A new cluster's name and join secret, the same in every deployment. */
export interface OpenedCluster {
  id: string;
  /** A secret: it goes to agents inside the join string and is kept nowhere. */
  token: string;
  /** What the coordinator keeps to check proofs of the token: useless to join. */
  verifier: string;
}

/** Names a new cluster and makes its join token. */
export function openCluster(): OpenedCluster {
  const token = createJoinToken();
  return { id: `c-${randomBytes(6).toString('hex')}`, token, verifier: tokenVerifier(token) };
}
