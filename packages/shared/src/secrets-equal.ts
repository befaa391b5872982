import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets (tokens, proofs, their digests) in constant time.
 * Both are hashed first, so they have one length and neither where they
 * differ nor how long the secret is shows in the time taken.
 */
export function secretsEqual(given: string | Uint8Array, expected: string | Uint8Array): boolean {
  const sha256 = (value: string | Uint8Array): Buffer => createHash('sha256').update(value).digest();
  return timingSafeEqual(sha256(given), sha256(expected));
}
