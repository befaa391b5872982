import { buildWorkloadEnv, isCredfwdError, validateEnviron, type DeliveryMode, type EndpointInfo, type Env } from '@credfwd/shared';
import type { StoredCredentials } from './credential-store.ts';

/** What the coordinator's welcome said about workloads on this connection. */
export interface WorkloadSettings {
  delivery: DeliveryMode;
  region: string | null;
  environ: Record<string, string>;
}

/** Everything a task's environment is made from. */
export interface TaskEnvironmentInput {
  /** The agent's environment at start. */
  baseEnv: Env;
  settings: WorkloadSettings;
  /** The unexpired credentials, if any. */
  credentials: StoredCredentials | undefined;
  /** The agent's credentials endpoint, in endpoint mode. */
  endpoint?: EndpointInfo;
  /** The agent's instance metadata endpoint's base URL, in imds mode. */
  imdsUrl?: string;
  /** The profile file running `credfwd-agent credentials`, in process mode. */
  configFile?: string;
  /** The task's own variables, already opened. */
  taskEnv?: Record<string, string>;
}

/** Either the environment to run a task with, or the stderr line saying why it must not run. */
export type TaskEnvironment = { env: Record<string, string> } | { refusal: string };

/**
 * Builds a task's environment by the delivery rules of shared, or refuses the
 * task when this agent cannot give it the identity the cluster promises.
 */
export function taskEnvironment(input: TaskEnvironmentInput): TaskEnvironment {
  const { delivery, region, environ } = input.settings;
  if (delivery !== 'none' && !input.credentials) {
    // Running anyway would hand the task the worker's own identity, or none.
    return { refusal: 'credfwd-agent: no unexpired credentials on this worker\n' };
  }
  if (delivery === 'endpoint' && !input.endpoint) {
    return { refusal: 'credfwd-agent: the credentials endpoint is not running\n' };
  }
  if (delivery === 'imds' && !input.imdsUrl) {
    return { refusal: 'credfwd-agent: the instance metadata endpoint is not running\n' };
  }
  if (delivery === 'process' && !input.configFile) {
    return { refusal: 'credfwd-agent: the credential_process profile is not written\n' };
  }
  const taskEnv = input.taskEnv ?? {};
  try {
    // The task's variables obey the same rules as environ: they may not override credentials or credfwd's own.
    validateEnviron(taskEnv, delivery);
  } catch (err) {
    if (!isCredfwdError(err)) throw err;
    return { refusal: `credfwd-agent: task env refused: ${err.message}\n` };
  }
  const credentials = input.credentials && { value: input.credentials.value, expiresAt: input.credentials.expiresAt };
  return {
    env: buildWorkloadEnv({ base: input.baseEnv, mode: delivery, environ: { ...environ, ...taskEnv }, region, credentials, endpoint: input.endpoint, imdsUrl: input.imdsUrl, configFile: input.configFile }),
  };
}
