import test from 'ava';
import { parseDuration } from '../src/duration.ts';
import { CredfwdError } from '../src/errors.ts';

const valid: Array<[string, number]> = [
  ['900', 900],
  ['90s', 90],
  ['15m', 900],
  ['1h', 3600],
  ['1h30m', 5400],
  ['1d', 86400],
  ['1d2h3m4s', 93784],
  [' 2h ', 7200],
];

for (const [text, seconds] of valid) {
  test(`parseDuration reads ${JSON.stringify(text)} as ${seconds} s`, (t) => {
    t.is(parseDuration(text), seconds);
  });
}

for (const text of ['', '   ', 'h', '1.5h', '-1h', '15M', '1m1h', '1 h', 'soon', '1h30']) {
  test(`parseDuration refuses ${JSON.stringify(text)} with USAGE`, (t) => {
    t.throws(() => parseDuration(text), { instanceOf: CredfwdError, code: 'USAGE' });
  });
}

test('parseDuration names the option it was parsing', (t) => {
  const err = t.throws(() => parseDuration('soon', '--duration'), { instanceOf: CredfwdError });
  t.regex(err?.message ?? '', /^--duration "soon" is not a duration/);
});
