import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CredfwdError, type Env } from '@credfwd/shared';

const AGENT_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The agent's id: `--agent-id`, else CREDFWD_AGENT_ID, else the host name
 * with 4 random bytes, so that agents sharing a host name stay apart.
 */
export function resolveAgentId(flag: string | undefined, env: Env): string {
  const given = flag ?? env.CREDFWD_AGENT_ID;
  if (given === undefined || given === '') return defaultAgentId();
  if (!AGENT_ID.test(given)) {
    throw new CredfwdError('USAGE', `agent id ${JSON.stringify(given.slice(0, 64))} is not valid`, 'use 1 to 128 of the characters A-Z a-z 0-9 . _ -');
  }
  return given;
}

function defaultAgentId(): string {
  const suffix = `-${randomBytes(4).toString('hex')}`;
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128 - suffix.length) || 'agent';
  return `${host}${suffix}`;
}
