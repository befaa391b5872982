import { CredfwdError, isCredfwdError, type DeliveryMode, type EndpointInfo, type EndpointListen, type Logger } from '@credfwd/shared';
import type { Clock } from './clock.ts';
import type { StoredCredentials } from './credential-store.ts';
import { createCredentialsEndpoint, type CredentialsEndpoint } from './credentials-endpoint.ts';
import { createImdsEndpoint, type ImdsEndpoint } from './imds-endpoint.ts';
import { writeProfileFile } from './profile-file.ts';

export interface DeliveryServersOptions {
  credentials: () => StoredCredentials | undefined;
  /** The region of the latest welcome, which the instance metadata endpoint serves. */
  region: () => string | null;
  clock: Clock;
  logger: Logger;
  /** Answer instance metadata requests without a session token (IMDSv1). */
  imdsV1: boolean;
  /** `--endpoint-listen`: in endpoint delivery, also serve the credentials endpoint where containers on the worker reach it. */
  endpointListen?: EndpointListen;
}

/**
 * What an agent serves its workloads besides their environment: the
 * container-credentials endpoint (`endpoint`), the instance metadata endpoint
 * (`imds`), or a profile whose credential_process asks the endpoint
 * (`process`). Each starts with the first welcome that asks for it and stays
 * until the agent stops, across reconnects.
 */
export class DeliveryServers {
  readonly #options: DeliveryServersOptions;
  #endpointStart: Promise<CredentialsEndpoint> | undefined;
  #endpoint: CredentialsEndpoint | undefined;
  #imdsStart: Promise<ImdsEndpoint> | undefined;
  #imds: ImdsEndpoint | undefined;
  #profileStart: Promise<string> | undefined;
  #configFile: string | undefined;

  constructor(options: DeliveryServersOptions) {
    this.#options = options;
  }

  /** Starts what `delivery` needs, unless it runs already; AGENT_START_FAILED when the agent cannot serve it. */
  async start(delivery: DeliveryMode): Promise<void> {
    if (delivery === 'endpoint' || delivery === 'process') await this.#startEndpoint(delivery === 'endpoint' ? this.#options.endpointListen : undefined);
    if (delivery === 'process') await this.#startProfile();
    if (delivery === 'imds') await this.#startImds();
  }

  endpoint(): EndpointInfo | undefined {
    return this.#endpoint && { url: this.#endpoint.url, tokenFile: this.#endpoint.tokenFile };
  }

  imdsUrl(): string | undefined {
    return this.#imds?.url;
  }

  /** The AWS_CONFIG_FILE of process delivery. */
  configFile(): string | undefined {
    return this.#configFile;
  }

  /** Stops every server: last, as tasks may use them until they are gone. */
  async close(): Promise<void> {
    const endpoint = await this.#endpointStart?.catch(() => undefined);
    await endpoint?.close();
    const imds = await this.#imdsStart?.catch(() => undefined);
    await imds?.close();
  }

  /** `endpointListen` only in endpoint delivery: process delivery's profile is for workloads on the worker itself. */
  async #startEndpoint(endpointListen: EndpointListen | undefined): Promise<void> {
    const { credentials, clock, logger } = this.#options;
    this.#endpointStart ??= createCredentialsEndpoint({ credentials, clock, logger, ...(endpointListen ? { containerListen: endpointListen } : {}) });
    this.#endpoint = await this.#endpointStart.catch((cause: unknown) => {
      const code = (cause as NodeJS.ErrnoException).code;
      if (endpointListen && (code === 'EADDRNOTAVAIL' || code === 'EADDRINUSE' || code === 'EACCES')) {
        throw startFailed(cause, `the credentials endpoint for containers (--endpoint-listen ${endpointListen.host}:${endpointListen.port})`, containerListenHint(endpointListen, code));
      }
      throw startFailed(cause, 'the credentials endpoint', 'check that the temporary directory is writable and that 127.0.0.1 accepts listeners');
    });
  }

  async #startProfile(): Promise<void> {
    const endpoint = this.#endpoint;
    if (!endpoint) return;
    this.#profileStart ??= writeProfileFile(endpoint);
    this.#configFile = await this.#profileStart.catch((cause: unknown) => {
      throw startFailed(cause, 'the credential_process profile', 'check that the temporary directory is writable');
    });
  }

  async #startImds(): Promise<void> {
    const { credentials, region, clock, logger, imdsV1 } = this.#options;
    this.#imdsStart ??= createImdsEndpoint({ credentials, region, clock, logger, allowV1: imdsV1 });
    this.#imds = await this.#imdsStart.catch((cause: unknown) => {
      throw startFailed(cause, 'the instance metadata endpoint', 'check that 127.0.0.1 accepts listeners');
    });
  }
}

function containerListenHint({ host, port }: EndpointListen, code: string): string {
  if (code === 'EADDRINUSE') return `another process listens on ${host}:${port}: leave the port out for an ephemeral one`;
  if (code === 'EACCES') return `port ${port} needs privileges: pick a port above 1023, or leave it out for an ephemeral one`;
  return `add the address to an interface the containers route to, e.g. ip addr add ${host}/${host.includes(':') ? 128 : 32} dev docker0`;
}

function startFailed(cause: unknown, what: string, hint: string): CredfwdError {
  if (isCredfwdError(cause)) return cause;
  return new CredfwdError('AGENT_START_FAILED', `${what} could not start: ${(cause as NodeJS.ErrnoException).code ?? 'unknown error'}`, hint, { cause });
}
