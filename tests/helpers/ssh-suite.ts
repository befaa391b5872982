import anyTest, { type TestFn } from 'ava';
import { sshHostsUnavailable } from './ssh-hosts.ts';

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
