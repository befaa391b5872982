import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { remoteCommand } from '../packages/coordinator/src/backends/ssh/remote-scripts.ts';

const run = promisify(execFile);

// What a path, an id or a hostile value may hold; each must reach the script as one word, unexpanded.
const AWKWARD = ["it's", 'two words', '$(touch /tmp/credfwd-pwned)', '`id`', '"quoted"', 'back\\slash', '*', '', 'new\nline'];

// Debian's sh (dash) and bash: the login shells of most hosts, and both on every machine these tests run on.
for (const shell of ['/bin/sh', '/bin/bash']) {
  test(`remoteCommand: ${shell} as the login shell hands every value to the script as one unexpanded word`, async (t) => {
    // sshd runs the remote command as `$SHELL -c COMMAND`.
    const { stdout } = await run(shell, ['-c', remoteCommand('for a in "$@"; do printf "<%s>" "$a"; done', AWKWARD)]);
    t.is(stdout, AWKWARD.map((a) => `<${a}>`).join(''));
    t.false(existsSync('/tmp/credfwd-pwned'));
  });
}
