import test from 'ava';
import { parseCommandLine } from '../src/command-line.ts';

const USAGE = { code: 'USAGE' };

test('parseCommandLine reads join and its options, with --give-up-after 10m by default', (t) => {
  t.deepEqual(parseCommandLine(['join']), { command: 'join', flags: { joinFile: undefined, stdin: undefined, outliveStdin: undefined, agentId: undefined, giveUpAfter: '10m', debug: undefined } });
  t.deepEqual(parseCommandLine(['join', '--stdin', '--agent-id', 'w1', '--give-up-after=30s', '--debug']), {
    command: 'join',
    flags: { joinFile: undefined, stdin: true, outliveStdin: undefined, agentId: 'w1', giveUpAfter: '30s', debug: true },
  });
  const fromFile = parseCommandLine(['join', '--join-file', '/run/join']);
  t.is(fromFile.command === 'join' ? fromFile.flags.joinFile : undefined, '/run/join');
});

test('parseCommandLine answers help for help, --help, -h and join --help', (t) => {
  for (const args of [['help'], ['--help'], ['-h'], ['join', '--help'], ['join', '-h']]) {
    const line = parseCommandLine(args);
    t.is(line.command, 'help', args.join(' '));
    t.regex(line.command === 'help' ? line.text : '', /^Usage: credfwd-agent join \[options\]/);
  }
});

test('parseCommandLine refuses a missing or unknown command, an unknown option, a missing value and a stray argument with USAGE', (t) => {
  t.throws(() => parseCommandLine([]), { ...USAGE, message: 'no command given' });
  t.throws(() => parseCommandLine(['joint']), { ...USAGE, message: "unknown command 'joint'" });
  t.throws(() => parseCommandLine(['join', '--nope']), USAGE);
  t.throws(() => parseCommandLine(['join', '--agent-id']), USAGE);
  t.throws(() => parseCommandLine(['join', 'extra']), USAGE);
});
