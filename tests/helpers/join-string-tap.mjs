// Preloaded into a launcher (NODE_OPTIONS=--import=THIS) by tests that must know the join token
// to search for it in logs and argv. Local agents get the join string only on their stdin, never
// in their environment or argv, so the one place a test can see it is the launcher's write to that
// pipe: this appends each agent's first stdin line to the file named by CREDFWD_TEST_JOIN_TAP.
import childProcess from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const tapFile = process.env.CREDFWD_TEST_JOIN_TAP;
const spawn = childProcess.spawn;

if (tapFile) {
  childProcess.spawn = function tappedSpawn(...args) {
    const child = spawn.apply(this, args);
    const argv = Array.isArray(args[1]) ? args[1] : [];
    if (argv.includes('--stdin') && child.stdin) {
      const write = child.stdin.write.bind(child.stdin);
      let first = true;
      child.stdin.write = (chunk, ...rest) => {
        if (first) {
          first = false;
          appendFileSync(tapFile, String(chunk), { mode: 0o600 });
        }
        return write(chunk, ...rest);
      };
    }
    return child;
  };
  // local-backend imports { spawn } by name: make that binding see the tap too.
  syncBuiltinESMExports();
}
