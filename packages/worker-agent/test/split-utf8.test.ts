import test from 'ava';
import { splitUtf8 } from '../src/split-utf8.ts';

test('splitUtf8 keeps short text whole and drops empty text', (t) => {
  t.deepEqual(splitUtf8('hello', 8), ['hello']);
  t.deepEqual(splitUtf8('', 8), []);
});

test('splitUtf8 cuts at the byte limit, never inside a character or surrogate pair', (t) => {
  const text = 'ab€😀c'.repeat(50);
  const pieces = splitUtf8(text, 7);
  t.is(pieces.join(''), text);
  for (const piece of pieces) {
    t.true(Buffer.byteLength(piece) <= 7);
    t.is(Buffer.from(piece).toString(), piece, 'each piece is valid UTF-8 on its own');
  }
});

test('splitUtf8 fills pieces up to the limit', (t) => {
  t.deepEqual(splitUtf8('aaaaa', 4), ['aaaa', 'a']);
  t.deepEqual(splitUtf8('a😀', 4), ['a', '😀']);
});

test('splitUtf8 refuses a limit below one 4-byte character', (t) => {
  t.throws(() => splitUtf8('x', 3), { instanceOf: RangeError });
});
