import anyTest, { type TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIamUser, type IamUser, type Moto } from './moto.ts';
import { actAsLauncher } from './role-launches.ts';
import { sshHostsUnavailable, startSshHosts, type SshHosts } from './ssh-hosts.ts';
import { startHostMoto } from './ssh-services.ts';

/** How a test file on SSH hosts declares its tests. */
export interface SshSuite<Context> {
  /** ava's test function, for hooks. */
  base: TestFn<Context>;
  /** Why the hosts cannot run here (no root, no sshd), or undefined. */
  unavailable: string | undefined;
  /** Serial where hosts can run; skipped otherwise, never passing silently. */
  test: TestFn<Context>['serial'] | TestFn<Context>['skip'];
  /** The test's title, with the reason it is skipped where it is. */
  title(name: string): string;
}

/** What {@link sshHostsFixture} puts in every test's context. */
export interface SshHostsContext {
  /** Three plain hosts. */
  hosts: SshHosts;
  /** moto on the hosts' service address, so workloads on every host reach it. */
  moto: Moto;
  /** A private directory, removed after the file's tests. */
  scratch: string;
}

/** What {@link sshHostsFixture} also does, where a file asks. */
export interface SshHostsFixtureOptions {
  /** Prefix of the scratch directory's name. */
  scratch: string;
  /**
   * An IAM user on moto whose keys this test process acts as, as the
   * launcher of every cluster the file launches (each ava file is a process of
   * its own); the launcher's files are hidden so that nothing else is found.
   */
  launcher?: string;
}

export function sshSuite<Context>(): SshSuite<Context> {
  const base = anyTest as TestFn<Context>;
  const unavailable = sshHostsUnavailable();
  return {
    base,
    unavailable,
    test: unavailable ? base.skip : base.serial,
    title: (name) => (unavailable ? `${name} [skipped: ${unavailable}]` : name),
  };
}

/**
 * The hosts most SSH test files share: three hosts, moto where they reach
 * it and a scratch directory, started before the file's tests (and before
 * the file's own `before` hooks) and torn down after them, whatever step
 * failed. Nothing is registered where the hosts cannot run.
 */
export function sshHostsFixture<Context extends SshHostsContext & { launcher?: IamUser }>(suite: SshSuite<Context>, options: SshHostsFixtureOptions): void {
  if (suite.unavailable) return;
  // Serial, as the file's own hooks that use the hosts must be: ava runs plain hooks concurrently.
  suite.base.serial.before(async (t) => {
    // Filled in step by step, so the after hook tears down whatever started before a later step failed.
    const hosts = t.context.hosts = await startSshHosts([{}, {}, {}]);
    const moto = t.context.moto = await startHostMoto(hosts);
    t.context.scratch = await mkdtemp(join(tmpdir(), options.scratch));
    if (options.launcher === undefined) return;
    const launcher = t.context.launcher = await createIamUser(moto, options.launcher);
    actAsLauncher(moto, launcher);
    process.env.AWS_CONFIG_FILE = '/dev/null';
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/dev/null';
  });
  suite.base.after.always(async (t) => {
    await t.context.moto?.stop();
    await t.context.hosts?.stop();
    if (t.context.scratch) await rm(t.context.scratch, { recursive: true, force: true });
  });
}
