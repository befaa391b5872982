import { CompactEncrypt, compactDecrypt } from 'jose';
import { CredfwdError } from './errors.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Seals a JSON value as a compact JWE (`dir`, A256GCM) under a session key. */
export async function sealJson(key: Uint8Array, value: unknown): Promise<string> {
  return new CompactEncrypt(encoder.encode(JSON.stringify(value)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .encrypt(key);
}

/** Opens a JWE made by {@link sealJson}; any tampering or wrong key is one generic error. */
export async function openJson(key: Uint8Array, jwe: string): Promise<unknown> {
  try {
    const { plaintext } = await compactDecrypt(jwe, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    return JSON.parse(decoder.decode(plaintext));
  } catch (cause) {
    throw new CredfwdError('PROTOCOL_VIOLATION', 'sealed payload could not be opened', 'the connection key does not match; the agent will reconnect', { cause });
  }
}
