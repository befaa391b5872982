import { CredfwdError, type Env } from '@credfwd/shared';
import { askAgent, locateAgent } from './agent-request.ts';
import type { CredentialsFlags } from './command-line.ts';

/** The credential_process output format, version 1 (what the AWS CLI and SDKs parse). */
export interface ProcessCredentials {
  Version: 1;
  AccessKeyId: string;
  SecretAccessKey: string;
  SessionToken?: string;
  Expiration: string;
}

/**
 * Fetches the agent's current credentials from its credentials endpoint on
 * this worker, authenticated by the token file the agent hands its
 * workloads: a user who cannot read that file (0600, in a 0700 directory)
 * gets nothing. Never returns credentials whose Expiration has passed.
 */
export async function fetchProcessCredentials(flags: CredentialsFlags, env: Env, now: () => number = Date.now): Promise<ProcessCredentials> {
  const response = await askAgent(locateAgent(flags, env));
  if (response.status === 503) {
    await response.body?.cancel();
    throw new CredfwdError(
      'NO_CREDENTIALS',
      'the agent on this worker is running but holds no credentials with at least 120 s left',
      'its coordinator has not pushed fresh ones: check that the launch is still running and reaches this worker (the agent log says when it last received credentials)',
    );
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
    throw new CredfwdError('NO_CREDENTIALS', 'the agent on this worker served credentials that have expired by this clock', "check this worker's clock (the agent reckons expiry on its own), then wait for fresh credentials");
  }
  return { Version: 1, AccessKeyId, SecretAccessKey, ...(Token === undefined ? {} : { SessionToken: Token }), Expiration };
}
