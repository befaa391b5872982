import test from 'ava';
import { parseCommandLine } from '../src/command-line.ts';

test('join --imds-v1 asks the instance metadata endpoint to answer requests without a token; absent, the key is absent', (t) => {
  const line = parseCommandLine(['join', '--imds-v1']);
  t.true(line.command === 'join' && line.flags.imdsV1);
  const plain = parseCommandLine(['join']);
  t.false(plain.command === 'join' && 'imdsV1' in plain.flags);
});

test('credentials takes --url and --token-file, has its own help, and refuses anything else with USAGE', (t) => {
  t.deepEqual(parseCommandLine(['credentials', '--url', 'http://127.0.0.1:1/x', '--token-file', '/tmp/t']), { command: 'credentials', flags: { url: 'http://127.0.0.1:1/x', tokenFile: '/tmp/t' } });
  t.deepEqual(parseCommandLine(['credentials']), { command: 'credentials', flags: { url: undefined, tokenFile: undefined } });
  const help = parseCommandLine(['credentials', '--help']);
  t.regex(help.command === 'help' ? help.text : '', /^Usage: credfwd-agent credentials/);
  t.throws(() => parseCommandLine(['credentials', '--token', 'x']), { code: 'USAGE' });
});
