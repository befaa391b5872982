import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
let made = 0;

/** Another local user: a system user made for one test (root only) and removed when it ends. */
export interface OtherUser {
  /** Runs argv as that user, with no supplementary groups; its output as text, stdin from `input`. */
  run(argv: string[], input?: string): SpawnSyncReturns<string>;
}

export async function createOtherUser(t: { teardown(fn: () => Promise<void>): void }): Promise<OtherUser> {
  const name = `credfwd-probe-${process.pid}-${++made}`;
  await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  t.teardown(async () => {
    await run('userdel', [name]);
  });
  const [uid = '', gid = ''] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]).then((ids) => ids.map((id) => id.stdout.trim()));
  return {
    run: (argv, input) => spawnSync('setpriv', ['--reuid', uid, '--regid', gid, '--clear-groups', ...argv], { encoding: 'utf8', timeout: 10_000, ...(input !== undefined ? { input } : {}) }),
  };
}
