import { once } from 'node:events';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { CredfwdError, errorMessage, presentsPin, type ErrorCode } from '@credfwd/shared';
import { workerResultFromJson, type CreateClusterRequest, type RunRequest, type WorkerResult, type WorkerResultJson } from '../core/index.ts';

/** What `POST /v1/clusters` answers. */
export interface CreatedCluster {
  id: string;
  mode: string;
  delivery: string;
  /** A secret: it holds the join token. */
  joinString: string;
  expiresAt: string | null;
  /** Null for a cluster created with `leaseSeconds: null`: it stays until deleted. */
  lease: ClusterLease | null;
}

/** A cluster's lease: renewed by its launcher, deleted by the service when it lapses. */
export interface ClusterLease {
  seconds: number;
  /** ISO 8601. */
  expiresAt: string | null;
}

export interface AdminClientOptions {
  /** `https://HOST:PORT` of any replica. */
  url: string;
  /** Lower-case hex SHA-256 of the service certificate, as `credfwd serve` prints it (without `sha256:`). */
  pin: string;
  adminToken: string;
}

/** One answer of the admin API. */
export interface AdminAnswer {
  status: number;
  body: unknown;
}

/**
 * A client of a replica's admin API that trusts exactly the pinned
 * certificate, as agents do: the TLS handshake is finished and the pin
 * checked before the bearer token is written to the socket.
 */
export class AdminClient {
  readonly #url: URL;
  readonly #pin: string;
  readonly #token: string;

  constructor(options: AdminClientOptions) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== 'https:' || !this.#url.port) {
      throw new CredfwdError('USAGE', `coordinator URL ${JSON.stringify(options.url.slice(0, 100))} is not https://HOST:PORT`, 'for example --coordinator https://credfwd.internal:7443');
    }
    this.#pin = options.pin;
    this.#token = options.adminToken;
  }

  /**
   * Sends one request; resolves with any HTTP answer, rejects only when no
   * answer came (within `timeoutMs`, when given: runs may rightly take minutes).
   */
  async request(method: string, path: string, body?: unknown, token: string | null = this.#token, timeoutMs?: number): Promise<AdminAnswer> {
    const socket = await this.#connect();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.#url.hostname,
        port: Number(this.#url.port),
        method,
        path,
        createConnection: () => socket,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // Not JSON (metrics): handed back as text.
          }
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      });
      req.on('error', (err) => reject(this.#unreachable(err)));
      if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.end(payload);
    });
  }

  createCluster(body: CreateClusterRequest): Promise<CreatedCluster> {
    return this.#expect<CreatedCluster>('POST', '/v1/clusters', body, 201);
  }

  /** Every cluster the caller may act on (all of them for the break-glass admin). */
  async listClusters(): Promise<Record<string, unknown>[]> {
    return (await this.#expect<{ clusters: Record<string, unknown>[] }>('GET', '/v1/clusters', undefined, 200)).clusters;
  }

  showCluster(clusterId: string): Promise<Record<string, unknown>> {
    return this.#expect('GET', `/v1/clusters/${encodeURIComponent(clusterId)}`, undefined, 200);
  }

  async run(clusterId: string, body: RunRequest): Promise<WorkerResult[]> {
    return (await this.#expect<{ results: WorkerResultJson[] }>('POST', `/v1/clusters/${encodeURIComponent(clusterId)}/run`, body, 200)).results.map(workerResultFromJson);
  }

  /** Refreshes a role cluster now (resumes it after needs-attention). */
  async refreshCluster(clusterId: string): Promise<void> {
    await this.#expect('POST', `/v1/clusters/${encodeURIComponent(clusterId)}/refresh`, undefined, 202);
  }

  /** Renews a cluster's lease; CLUSTER_NOT_FOUND once it has lapsed or the cluster was deleted. */
  renewLease(clusterId: string, timeoutMs?: number): Promise<{ lease: ClusterLease | null }> {
    return this.#expect('POST', `/v1/clusters/${encodeURIComponent(clusterId)}/lease`, undefined, 200, timeoutMs);
  }

  /** Deletes a role cluster and denies its sessions on the role (every session issued before now with `allSessions`). */
  revokeCluster(clusterId: string, allSessions = false): Promise<{ id: string; roleArn: string; policyName: string; allSessions: boolean }> {
    return this.#expect('POST', `/v1/clusters/${encodeURIComponent(clusterId)}/revoke`, allSessions ? { allSessions } : undefined, 200);
  }

  async deleteCluster(clusterId: string): Promise<void> {
    await this.#expect('DELETE', `/v1/clusters/${encodeURIComponent(clusterId)}`, undefined, 204);
  }

  async #expect<T>(method: string, path: string, body: unknown, status: number, timeoutMs?: number): Promise<T> {
    const answer = await this.request(method, path, body, this.#token, timeoutMs);
    if (answer.status === status) return answer.body as T;
    const error = answer.body as { code?: ErrorCode; message?: string; hint?: string } | undefined;
    throw new CredfwdError(
      error?.code ?? 'INTERNAL',
      `coordinator answered ${answer.status}: ${error?.message ?? 'no error message'}`,
      error?.hint ?? 'see the replica log',
    );
  }

  async #connect(): Promise<TLSSocket> {
    const host = this.#url.hostname.replace(/^\[|\]$/g, '');
    const socket = connect({ host, port: Number(this.#url.port), servername: isIP(host) ? '' : host, rejectUnauthorized: false });
    try {
      await once(socket, 'secureConnect');
    } catch (err) {
      throw this.#unreachable(err);
    }
    if (!presentsPin(socket, this.#pin)) {
      socket.destroy();
      throw new CredfwdError('COORDINATOR_PIN_MISMATCH', `the coordinator at ${this.#url.host} presented a certificate that does not match the pin`, 'check --coordinator-pin / CREDFWD_COORDINATOR_PIN against what credfwd serve printed');
    }
    return socket;
  }

  #unreachable(cause: unknown): CredfwdError {
    if (cause instanceof CredfwdError) return cause;
    return new CredfwdError('COORDINATOR_UNREACHABLE', `cannot reach the coordinator at ${this.#url.host}: ${errorMessage(cause)}`, 'check --coordinator and that a replica is running', { cause });
  }
}
