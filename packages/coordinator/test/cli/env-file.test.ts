import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CredfwdError } from '@credfwd/shared';
import { MAX_ENV_FILE_BYTES, parseEnvFile, readEnvFile } from '../../src/cli/env-file.ts';

function fileWith(content: string | Buffer): string {
  const file = join(mkdtempSync(join(tmpdir(), 'credfwd-env-file-')), 'vars.env');
  writeFileSync(file, content);
  return file;
}

test('parseEnvFile drops an inline comment after an unquoted value, as dotenv does (issue 10: C=v # comment kept the comment)', (t) => {
  t.deepEqual(parseEnvFile('C=v # comment\n', 'f'), { C: 'v' });
});

test('parseEnvFile ends an unquoted value at the first #, with or without a space before it (dotenv since v15)', (t) => {
  t.deepEqual(parseEnvFile('A=abc#def\nB=  padded  \nC=#only-a-comment\n', 'f'), { A: 'abc', B: 'padded', C: '' });
});

test('parseEnvFile keeps # inside quotes of every kind, and drops a comment after the closing quote', (t) => {
  const text = 'D="a # b" # c\nS=\'x#y\'\nB=`tick # tock`   # note\nE="" # empty\n';
  t.deepEqual(parseEnvFile(text, 'f'), { D: 'a # b', S: 'x#y', B: 'tick # tock', E: '' });
});

test('parseEnvFile reads export, spaces around =, CRLF line ends, comment lines and empty values', (t) => {
  const text = '# top\r\nexport A=1\r\nB = two\r\n\r\n   # indented comment\r\nC=\r\n';
  t.deepEqual(parseEnvFile(text, 'f'), { A: '1', B: 'two', C: '' });
});

test('parseEnvFile expands \\n, \\r, \\" and \\\\ in double quotes only, in one pass', (t) => {
  const text = 'D="l1\\nl2 \\"q\\" back\\\\n"\nS=\'raw\\n\'\n';
  t.deepEqual(parseEnvFile(text, 'f'), { D: 'l1\nl2 "q" back\\n', S: 'raw\\n' });
});

test('parseEnvFile names the line of an unterminated quote or text after a closing quote, never its content', (t) => {
  const unterminated = t.throws(() => parseEnvFile('A=1\nB="secret-value\n', 'vars.env'), { instanceOf: CredfwdError, code: 'ENV_FILE_INVALID' });
  t.regex(unterminated?.message ?? '', /vars\.env line 2: unterminated " quote/);
  const trailing = t.throws(() => parseEnvFile('A="secret-value" more\n', 'vars.env'), { instanceOf: CredfwdError, code: 'ENV_FILE_INVALID' });
  t.regex(trailing?.message ?? '', /line 1: text after the closing/);
  for (const error of [unterminated, trailing]) t.false(`${error?.message} ${error?.hint}`.includes('secret-value'));
});

test('readEnvFile refuses a file that is not UTF-8, naming the line (issue 10: such bytes became U+FFFD)', (t) => {
  const file = fileWith(Buffer.concat([Buffer.from('A=1\nB=2\nC=caf'), Buffer.from([0xe9]), Buffer.from('\nD=4\n')]));
  const error = t.throws(() => readEnvFile(file), { instanceOf: CredfwdError, code: 'ENV_FILE_INVALID' });
  t.regex(error?.message ?? '', /line 3: is not UTF-8/);
});

test('readEnvFile accepts UTF-8 text and a byte order mark', (t) => {
  t.deepEqual(readEnvFile(fileWith('\uFEFFGREETING=grüß dich ✓\n')), { GREETING: 'grüß dich ✓' });
});

test('readEnvFile reads a file of exactly MAX_ENV_FILE_BYTES and refuses one byte more with ENV_TOO_LARGE naming the limit', (t) => {
  const line = 'A=1\n';
  const comment = `#${'x'.repeat(MAX_ENV_FILE_BYTES - line.length - 2)}\n`;
  t.deepEqual(readEnvFile(fileWith(comment + line)), { A: '1' });
  const error = t.throws(() => readEnvFile(fileWith(`${comment}#${line}`)), { instanceOf: CredfwdError, code: 'ENV_TOO_LARGE' });
  t.regex(error?.hint ?? '', /256 KiB/);
});

test('readEnvFile refuses /dev/zero after reading one byte more than the limit (issue 10: it read 24 GB)', (t) => {
  const before = process.memoryUsage().rss;
  t.throws(() => readEnvFile('/dev/zero'), { instanceOf: CredfwdError, code: 'ENV_TOO_LARGE' });
  t.true(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'memory stays bounded');
});

test('readEnvFile turns a missing file or a directory into ENV_FILE_INVALID with the reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credfwd-env-dir-'));
  t.throws(() => readEnvFile(join(dir, 'missing.env')), { code: 'ENV_FILE_INVALID', message: /ENOENT/ });
  t.throws(() => readEnvFile(dir), { code: 'ENV_FILE_INVALID', message: /EISDIR/ });
});
