import { readFileSync } from 'node:fs';
import { CredfwdError, type Env } from '@credfwd/shared';
import type { CredentialsFlags } from './command-line.ts';

/** The agent on this worker, as its workloads know it: its credentials URL and the file holding its token. */
export interface AgentLocation {
  url: string;
  tokenFile: string;
}

/** How long a request to the agent may take: SDKs wait on credential_process, so a hung agent must not hang them. */
const FETCH_TIMEOUT_MS = 5_000;

/**
 * Finds the agent from `--url`/`--token-file`, else from the container
 * endpoint variables every workload of endpoint and process delivery has.
 */
export function locateAgent(flags: CredentialsFlags, env: Env): AgentLocation {
  const url = flags.url ?? env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  const tokenFile = flags.tokenFile ?? env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  if (!url || !tokenFile) {
    throw new CredfwdError('USAGE', 'no credentials endpoint to ask', 'pass --url and --token-file, or run inside a credfwd workload (delivery process or endpoint)');
  }
  return { url, tokenFile };
}

/**
 * GETs `path` (the credentials URL's own by default) from the agent,
 * authenticated by the token file the agent hands its workloads: a user who
 * cannot read that file (0600, in a 0700 directory) gets nothing. Statuses
 * are the caller's to read.
 */
export async function askAgent(agent: AgentLocation, path?: string): Promise<Response> {
  let token: string;
  try {
    token = readFileSync(agent.tokenFile, 'utf8');
  } catch (err) {
    throw new CredfwdError('AGENT_AUTH_FAILED', `cannot read the agent's token file: ${(err as NodeJS.ErrnoException).code ?? 'unknown error'}`, "run as the agent's user, inside one of its workloads");
  }
  let url: URL;
  try {
    url = new URL(path ?? agent.url, agent.url);
  } catch (cause) {
    throw new CredfwdError('USAGE', 'the credentials endpoint URL is not a URL', 'pass --url http://127.0.0.1:PORT/credfwd/v1/credentials, as the workload environment has it', { cause });
  }
  try {
    return await fetch(url, { headers: { authorization: token }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (cause) {
    throw new CredfwdError('AGENT_UNREACHABLE', 'the agent on this worker did not answer', 'check that credfwd-agent is running and has joined its cluster', { cause });
  }
}
