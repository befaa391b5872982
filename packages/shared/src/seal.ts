import { createCipheriv, createDecipheriv, createSecretKey, KeyObject, randomBytes } from 'node:crypto';
import { CredfwdError } from './errors.ts';

/**
 * The one protected header credfwd seals with (RFC 7516 compact JWE, `dir`,
 * A256GCM), as its base64url form: it is the AEAD's additional data too.
 */
const HEADER = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM' })).toString('base64url');
const AAD = Buffer.from(HEADER, 'ascii');
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A session key as raw bytes, or already imported: a coordinator seals every
 * refresh for every agent, and holds only the imported key of each.
 */
export type SessionKey = Uint8Array | KeyObject;

// Raw keys are imported once, not per seal.
const imported = new WeakMap<Uint8Array, KeyObject>();

function secretKey(key: SessionKey): KeyObject {
  if (key instanceof KeyObject) {
    assertKeyBytes(key.symmetricKeySize);
    return key;
  }
  let keyObject = imported.get(key);
  if (keyObject === undefined) {
    assertKeyBytes(key.length);
    keyObject = createSecretKey(key);
    imported.set(key, keyObject);
  }
  return keyObject;
}

function assertKeyBytes(bytes: number | undefined): void {
  if (bytes !== 32) throw new CredfwdError('INTERNAL', `a session key has ${bytes} bytes instead of 32`, 'this is a bug in credfwd; please report it');
}

/** Seals a JSON value as a compact JWE (`dir`, A256GCM) under a session key; any JOSE library opens it. */
export async function sealJson(key: SessionKey, value: unknown): Promise<string> {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', secretKey(key), iv, { authTagLength: TAG_BYTES }).setAAD(AAD);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return `${HEADER}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

/** Opens a JWE made by {@link sealJson}; any tampering, other header or wrong key is one generic error. */
export async function openJson(key: SessionKey, jwe: string): Promise<unknown> {
  try {
    const [header, encryptedKey, iv, ciphertext, tag, ...extra] = jwe.split('.');
    // Only the exact header sealJson writes: no other algorithm, compression or critical extension.
    if (header !== HEADER || encryptedKey !== '' || iv === undefined || ciphertext === undefined || tag === undefined || extra.length > 0) {
      throw new Error('not a dir/A256GCM compact JWE');
    }
    const ivBytes = Buffer.from(iv, 'base64url');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new Error('IV or tag of the wrong length');
    const decipher = createDecipheriv('aes-256-gcm', secretKey(key), ivBytes, { authTagLength: TAG_BYTES }).setAAD(AAD).setAuthTag(tagBytes);
    const plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
    return JSON.parse(plaintext.toString('utf8'));
  } catch (cause) {
    throw new CredfwdError('PROTOCOL_VIOLATION', 'sealed payload could not be opened', 'the connection key does not match; the agent will reconnect', { cause });
  }
}
