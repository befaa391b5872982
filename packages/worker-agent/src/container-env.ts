import { CredfwdError, type Env } from '@credfwd/shared';
import { askAgent, locateAgent } from './agent-request.ts';
import type { ContainerEnvFlags } from './command-line.ts';
import { CONTAINER_ENDPOINT_PATH } from './credentials-endpoint.ts';

/** Where `--format docker` mounts the token file inside the container unless `--token-path` says otherwise. */
export const DOCKER_TOKEN_PATH = '/run/credfwd/token';

/**
 * What a container on this worker needs to fetch the agent's credentials
 * itself: the endpoint at the agent's `--endpoint-listen` address, the token
 * file's path (never the token), the region, and no fallback to the worker's
 * own instance role. Asked of the running agent, found as `credfwd-agent
 * credentials` finds it; `env` lines suit `docker run --env-file` and
 * `set -a; . FILE`, `docker` is arguments for `docker run $(…)` that also
 * bind-mount the token file read-only.
 */
export async function containerEnv(flags: ContainerEnvFlags, env: Env): Promise<string> {
  const agent = locateAgent(flags, env);
  const response = await askAgent(agent, CONTAINER_ENDPOINT_PATH);
  if (response.status === 404) {
    await response.body?.cancel();
    throw new CredfwdError('NOT_FOUND', 'the agent on this worker serves no address containers can reach', 'launch with --endpoint-listen 169.254.170.2 (credfwd launch), or start the agent with credfwd-agent join --endpoint-listen 169.254.170.2');
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new CredfwdError('AGENT_AUTH_FAILED', `the agent refused the request with HTTP ${response.status}`, 'the token file may belong to another agent: run inside one of its workloads');
  }
  const { url } = (await response.json()) as { url?: unknown };
  if (typeof url !== 'string') throw new CredfwdError('PROTOCOL_VIOLATION', 'the agent answered a container endpoint of the wrong shape', 'upgrade credfwd-agent so this command and the agent are the same version');
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const tokenPath = flags.tokenPath ?? (flags.format === 'docker' ? DOCKER_TOKEN_PATH : agent.tokenFile);
  const vars: [string, string][] = [
    ['AWS_CONTAINER_CREDENTIALS_FULL_URI', url],
    ['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', tokenPath],
    // Should the endpoint fail, SDKs must fail rather than fall back to the worker's instance role.
    ['AWS_EC2_METADATA_DISABLED', 'true'],
    ...(region ? [['AWS_REGION', region], ['AWS_DEFAULT_REGION', region]] as [string, string][] : []),
  ];
  if (flags.format === 'env') return vars.map(([name, value]) => `${name}=${value}\n`).join('');
  const args = [...vars.map(([name, value]) => `--env ${name}=${value}`), `--volume ${agent.tokenFile}:${tokenPath}:ro`];
  // Word-split by the shell in `docker run $(…)`: a value with blanks would split into wrong arguments.
  if (args.some((arg) => /\s/.test(arg.slice(arg.indexOf(' ') + 1)))) {
    throw new CredfwdError('USAGE', 'a path or value holds blanks, which docker run $(…) would split', 'use --format env with docker run --env-file, and mount the token file yourself');
  }
  return args.map((arg) => `${arg}\n`).join('');
}
