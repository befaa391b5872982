import { createSecretKey, randomBytes } from 'node:crypto';
import test from 'ava';
import { CredfwdError } from '../src/errors.ts';
import { openJson, sealJson } from '../src/seal.ts';

const key = new Uint8Array(randomBytes(32));
const VIOLATION = { instanceOf: CredfwdError, code: 'PROTOCOL_VIOLATION' };
const value = { accessKeyId: 'ASIAEXAMPLEEXAMPLE01', secretAccessKey: 's3cr3t', nested: [1, 'two', null] };

test('openJson returns what sealJson sealed', async (t) => {
  t.deepEqual(await openJson(key, await sealJson(key, value)), value);
});

test('sealJson seals under an imported KeyObject what openJson opens with the raw bytes', async (t) => {
  t.deepEqual(await openJson(key, await sealJson(createSecretKey(key), value)), value);
});

test('sealJson refuses a session key that is not 32 bytes with INTERNAL', async (t) => {
  await t.throwsAsync(sealJson(createSecretKey(randomBytes(16)), value), { instanceOf: CredfwdError, code: 'INTERNAL' });
  await t.throwsAsync(sealJson(new Uint8Array(16), value), { instanceOf: CredfwdError, code: 'INTERNAL' });
});

test('sealJson makes a compact dir/A256GCM JWE that does not show the plaintext', async (t) => {
  const jwe = await sealJson(key, value);
  const parts = jwe.split('.');
  t.is(parts.length, 5);
  t.is(parts[1], '', 'dir carries no encrypted key');
  t.deepEqual(JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')), { alg: 'dir', enc: 'A256GCM' });
  t.false(jwe.includes('s3cr3t'));
  t.false(Buffer.from(parts[3] ?? '', 'base64url').toString('latin1').includes('s3cr3t'));
});

test('sealJson uses a fresh IV each time', async (t) => {
  t.not(await sealJson(key, value), await sealJson(key, value));
});

test('openJson refuses another key with PROTOCOL_VIOLATION', async (t) => {
  const jwe = await sealJson(key, value);
  await t.throwsAsync(openJson(new Uint8Array(randomBytes(32)), jwe), VIOLATION);
});

/** Flips one bit in the given part of a compact JWE. */
function tamper(jwe: string, part: number): string {
  const parts = jwe.split('.');
  const bytes = Buffer.from(parts[part] ?? '', 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 1;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

for (const [part, name] of [[2, 'IV'], [3, 'ciphertext'], [4, 'tag']] as const) {
  test(`openJson refuses a JWE with a tampered ${name} with PROTOCOL_VIOLATION`, async (t) => {
    await t.throwsAsync(openJson(key, tamper(await sealJson(key, value), part)), VIOLATION);
  });
}

test('openJson refuses a JWE whose header was changed with PROTOCOL_VIOLATION', async (t) => {
  const [, ...rest] = (await sealJson(key, value)).split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: 'x' })).toString('base64url');
  await t.throwsAsync(openJson(key, [header, ...rest].join('.')), VIOLATION);
});

test('openJson refuses a JWE of another algorithm with PROTOCOL_VIOLATION', async (t) => {
  const [, ...rest] = (await sealJson(key, value)).split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A128GCM' })).toString('base64url');
  await t.throwsAsync(openJson(key, [header, ...rest].join('.')), VIOLATION);
});

test('openJson refuses garbage with PROTOCOL_VIOLATION', async (t) => {
  await t.throwsAsync(openJson(key, 'not.a.jwe'), VIOLATION);
});

test('sealJson makes a JWE that jose opens, and openJson opens one jose sealed', async (t) => {
  const { CompactEncrypt, compactDecrypt } = await import('jose');
  const { plaintext } = await compactDecrypt(await sealJson(key, value), key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
  t.deepEqual(JSON.parse(new TextDecoder().decode(plaintext)), value);
  const byJose = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(value))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key);
  t.deepEqual(await openJson(key, byJose), value);
});

test('openJson refuses a JWE with a compressed or critical header with PROTOCOL_VIOLATION', async (t) => {
  const [, ...rest] = (await sealJson(key, value)).split('.');
  for (const extra of [{ zip: 'DEF' }, { crit: ['exp'], exp: 1 }]) {
    const header = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', ...extra })).toString('base64url');
    await t.throwsAsync(openJson(key, [header, ...rest].join('.')), VIOLATION);
  }
});
