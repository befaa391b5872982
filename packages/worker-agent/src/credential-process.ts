import { readFileSync } from 'node:fs';
import { CredfwdError, type Env } from '@credfwd/shared';
import type { CredentialsFlags } from './command-line.ts';

/** The credential_process output format, version 1 (what the AWS CLI and SDKs parse). */
export interface ProcessCredentials {
  Version: 1;
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken?: string;
  Expiration: string;
}

/** How long the fetch from the agent may take: SDKs wait on credential_process, so a hung agent must not hang them. */
const FETCH_TIMEOUT_MS = 5_000;

/**
 * Fetches the agent's current credentials from its credentials endpoint on
 * this worker, authenticated by the token file the agent hands its
 * workloads: a user who cannot read that file (0600, in a 0700 directory)
 * gets nothing. Never returns credentials whose Expiration has passed.
 */
export async function fetchProcessCredentials(flags: CredentialsFlags, env: Env, now: () => number = Date.now): Promise<ProcessCredentials> {
  const url = flags.url ?? env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  const tokenFile = flags.tokenFile ?? env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  if (!url || !tokenFile) {
    throw new CredfwdError('USAGE', 'no credentials endpoint to ask', 'pass --url and --token-file, or run inside a credfwd workload (delivery process or endpoint)');
  }
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8');
  } catch (err) {
    throw new CredfwdError('AGENT_AUTH_FAILED', `cannot read the agent's token file: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`, "run as the agent's user, inside one of its workloads");
  }
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: token }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (cause) {
    throw new CredfwdError('AGENT_UNREACHABLE', 'the agent on this worker did not answer', 'check that credfwd-agent is running and has joined its cluster', { cause });
  }
  if (response.status === 503) {
    await response.body?.cancel();
    throw new CredfwdError('AGENT_UNREACHABLE', 'the agent on this worker holds no unexpired credentials', 'wait for its coordinator to push fresh ones; see the agent log');
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new CredfwdError('AGENT_AUTH_FAILED', `the agent refused the request with HTTP ${response.status}`, 'the token file may belong to another agent: run inside one of its workloads');
  }
  const body = (await response.json()) as Partial<Record<'AccessKeyId' | 'SecretAccessKey' | 'Token' | 'Expiration', unknown>>;
  const { AccessKeyId, SecretAccessKey, Token, Expiration } = body;
  if (typeof AccessKeyId !== 'string' || typeof SecretAccessKey !== 'string' || typeof Expiration !== 'string' || (Token !== undefined && typeof Token !== 'string')) {
    throw new CredfwdError('PROTOCOL_VIOLATION', 'the agent answered credentials of the wrong shape', 'upgrade credfwd-agent so this command and the agent are the same version');
  }
  // The agent already refuses to serve within 120 s of expiry on its clock; this guards against this process's clock too.
  if (!(Date.parse(Expiration) > now())) {
    throw new CredfwdError('AGENT_UNREACHABLE', 'the agent on this worker served credentials that have expired by this clock', "check the worker's clock, then wait for fresh credentials");
  }
  return { Version: 1, AccessKeyId, SecretAccessKey, ...(Token === undefined ? {} : { SessionToken: Token }), Expiration };
}
