import { CredfwdError } from '@credfwd/shared';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Worker variables reach a remote agent as `NAME=VALUE` lines on its
 * session's stdin (never argv): a value must therefore be one line.
 */
export function checkWorkerEnv(env: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(env)) {
    if (!NAME.test(name)) throw new CredfwdError('ENV_NAME_INVALID', `worker variable name ${JSON.stringify(name.slice(0, 64))} is not valid`, 'use letters, digits and _, not starting with a digit');
    if (/[\n\r\0]/.test(value)) throw new CredfwdError('CONFIG_INVALID', `worker variable ${name} holds a line break or NUL, which SSH hosts cannot be given`, 'pass one-line values to remote workers');
  }
}
