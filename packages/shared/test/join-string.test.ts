import test from 'ava';
import { CredfwdError } from '../src/errors.ts';
import { createJoinToken, formatJoinString, parseJoinString, type JoinInfo } from '../src/join-string.ts';

const TOKEN = createJoinToken();
const PIN = 'ab'.repeat(32);
const info: JoinInfo = { addresses: ['127.0.0.1:8443'], clusterId: 'cluster-1', token: TOKEN, pin: PIN };

test('createJoinToken makes 32 random bytes, base64url', (t) => {
  t.is(Buffer.from(TOKEN, 'base64url').length, 32);
  t.regex(TOKEN, /^[A-Za-z0-9_-]{43}$/);
  t.not(createJoinToken(), TOKEN);
});

test('formatJoinString writes the documented shape', (t) => {
  t.is(formatJoinString(info), `credfwd://127.0.0.1:8443/cluster-1?token=${TOKEN}&pin=sha256:${PIN}`);
});

test('parseJoinString reads back what formatJoinString wrote', (t) => {
  t.deepEqual(parseJoinString(formatJoinString(info)), info);
});

test('parseJoinString keeps several addresses in order', (t) => {
  const replicas = { ...info, addresses: ['10.0.0.1:8443', 'coord-2.internal:9443', 'localhost:1'] };
  t.deepEqual(parseJoinString(formatJoinString(replicas)).addresses, replicas.addresses);
});

test('parseJoinString accepts a bracketed IPv6 address', (t) => {
  const v6 = { ...info, addresses: ['[::1]:443', '[fe80::1:2]:8443'] };
  t.deepEqual(parseJoinString(formatJoinString(v6)), v6);
});

test('parseJoinString ignores surrounding whitespace, as from a file', (t) => {
  t.deepEqual(parseJoinString(`  ${formatJoinString(info)}\n`), info);
});

const good = formatJoinString(info);
const malformed: Array<[string, string]> = [
  ['another scheme', good.replace('credfwd://', 'https://')],
  ['no scheme', good.replace('credfwd://', '')],
  ['no cluster part', `credfwd://127.0.0.1:8443?token=${TOKEN}&pin=sha256:${PIN}`],
  ['no query', 'credfwd://127.0.0.1:8443/cluster-1'],
  ['an address without a port', good.replace('127.0.0.1:8443', '127.0.0.1')],
  ['port 0', good.replace(':8443', ':0')],
  ['port 65536', good.replace(':8443', ':65536')],
  ['an empty address in the list', good.replace('127.0.0.1:8443', '127.0.0.1:8443,')],
  ['an unbracketed IPv6 address', good.replace('127.0.0.1:8443', '::1:443')],
  ['an empty cluster id', good.replace('/cluster-1?', '/?')],
  ['a cluster id with a slash', good.replace('/cluster-1?', '/a/b?')],
  ['no token', good.replace(`token=${TOKEN}&`, '')],
  ['a short token', good.replace(TOKEN, TOKEN.slice(1))],
  ['a token with foreign characters', good.replace(TOKEN, `${TOKEN.slice(1)}+`)],
  ['no pin', good.replace(`&pin=sha256:${PIN}`, '')],
  ['a pin of another hash', good.replace('sha256:', 'sha1:')],
  ['a short pin', good.replace(PIN, PIN.slice(2))],
];

for (const [what, text] of malformed) {
  test(`parseJoinString rejects ${what} without echoing the token`, (t) => {
    const err = t.throws(() => parseJoinString(text), { instanceOf: CredfwdError, code: 'JOIN_STRING_INVALID' });
    for (const secret of [TOKEN, TOKEN.slice(1), TOKEN.slice(0, 16)]) {
      t.false(err?.message.includes(secret), 'message holds the token');
      t.false(err?.hint.includes(secret), 'hint holds the token');
    }
  });
}
