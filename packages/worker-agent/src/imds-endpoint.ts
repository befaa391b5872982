import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CredfwdError, errorMessage, type Logger, type TokenBucketOptions } from '@credfwd/shared';
import { systemClock, type Clock } from './clock.ts';
import type { StoredCredentials } from './credential-store.ts';
import { imdsExpiration } from './imds-expiration.ts';
import { ImdsTokens, TOKEN_TTL_HEADER } from './imds-tokens.ts';
import { isoSeconds, listenOnLoopback, replies, servedCredentials, type Replies } from './loopback-http.ts';
import { canReadSocketOwners, peerOwnerUid } from './peer-owner.ts';
import { RefusalThrottle } from './refusal-throttle.ts';

/** The one role the endpoint lists: workloads need a name to ask for, and the agent knows no role's. */
export const IMDS_ROLE_NAME = 'credfwd';
const TOKEN_PATH = '/latest/api/token';
const ROLES_PATH = '/latest/meta-data/iam/security-credentials/';
const REGION_PATH = '/latest/meta-data/placement/region';
const IDENTITY_PATH = '/latest/dynamic/instance-identity/document';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

/** What an {@link ImdsEndpoint} serves from. */
export interface ImdsEndpointOptions {
  /** The credentials to serve, or undefined when none are usable (answered with 503). */
  credentials(): StoredCredentials | undefined;
  /** The cluster's region, served to SDKs that look it up; null when the cluster has none. */
  region(): string | null;
  logger: Logger;
  clock?: Clock;
  /** Answer requests without a session token (IMDSv1), as `--imds-v1` asks; refused with 401 by default. */
  allowV1?: boolean;
  /** Refusals answered in full before further ones get 429. */
  refusalLimit?: TokenBucketOptions;
}

/** A running instance metadata endpoint. */
export interface ImdsEndpoint {
  /** Base URL, as AWS_EC2_METADATA_SERVICE_ENDPOINT takes it: `http://127.0.0.1:PORT/`. */
  url: string;
  /** Stops serving; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a loopback HTTP server speaking the EC2 instance metadata protocol
 * (IMDSv2: a session token from PUT /latest/api/token, then the role's
 * credentials), for clients that read only instance metadata. That protocol
 * has no shared secret, so the endpoint answers only connections whose client
 * socket belongs to the agent's own user, as the kernel's socket table says;
 * on hosts without one (not Linux) it does not start.
 */
export async function createImdsEndpoint(options: ImdsEndpointOptions): Promise<ImdsEndpoint> {
  if (!canReadSocketOwners()) {
    throw new CredfwdError(
      'AGENT_START_FAILED',
      'imds delivery needs /proc/net/tcp to tell which user connects, and this host has none',
      'run the agent on Linux, or launch with --delivery endpoint, which authenticates by a token file',
    );
  }
  const throttle = new RefusalThrottle(options.logger, options.refusalLimit);
  const tokens = new ImdsTokens(options.clock ?? systemClock);
  const uid = process.getuid?.() ?? -1;
  // Checked once per connection: SDK clients keep theirs alive across requests.
  const owners = new WeakMap<Socket, Promise<boolean>>();
  const ownUser = (socket: Socket, serverPort: number): Promise<boolean> => {
    let own = owners.get(socket);
    if (own === undefined) {
      const clientPort = socket.remotePort;
      own = clientPort === undefined ? Promise.resolve(false) : peerOwnerUid(clientPort, serverPort).then((owner) => owner === uid);
      owners.set(socket, own);
    }
    return own;
  };
  let port = 0;
  const server = await listenOnLoopback(
    (req, res) => {
      const reply = replies(req, res, throttle, options.logger, 'instance metadata endpoint');
      ownUser(req.socket, port)
        .then((own) => (own ? answer(req, res, { options, tokens, reply }) : reply.refuse(403, "forbidden: the connection is not from the agent's user")))
        .catch((err: unknown) => {
          options.logger.error({ reason: errorMessage(err) }, 'instance metadata endpoint failed a request');
          res.destroy();
        });
    },
    options.logger,
    'instance metadata endpoint',
  );
  port = server.port;
  const url = `http://127.0.0.1:${port}/`;
  options.logger.info({ url, imdsV1: options.allowV1 === true }, 'instance metadata endpoint listening');
  return {
    url,
    close: async () => {
      await server.close();
      throttle.close();
    },
  };
}

interface Context {
  options: ImdsEndpointOptions;
  tokens: ImdsTokens;
  reply: Replies;
}

function answer(req: IncomingMessage, res: ServerResponse, { options, tokens, reply }: Context): void {
  const { path, send, refuse, json, text } = reply;
  // As AWS's own: a request that went through a proxy is refused, so a misconfigured proxy on the host cannot relay it.
  if (req.headers['x-forwarded-for'] !== undefined) return refuse(403, 'forbidden: forwarded request');
  if (path === TOKEN_PATH) {
    if (req.method !== 'PUT') return refuse(405, 'method not allowed', { allow: 'PUT' });
    const issued = tokens.issue(req.headers[TOKEN_TTL_HEADER]);
    if (!issued) return refuse(400, `bad request: ${TOKEN_TTL_HEADER} must be a whole number of seconds from 1 to 21600`);
    return text(issued.token, { [TOKEN_TTL_HEADER]: String(issued.ttlSeconds) });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, 'method not allowed', { allow: 'GET, HEAD' });
  const token = req.headers[TOKEN_HEADER];
  if (token === undefined ? !options.allowV1 : !tokens.valid(token)) return refuse(401, 'unauthorized');
  const region = options.region();
  if (path === ROLES_PATH || path === ROLES_PATH.slice(0, -1)) return text(IMDS_ROLE_NAME);
  if (path === ROLES_PATH + IMDS_ROLE_NAME || path === `${ROLES_PATH}${IMDS_ROLE_NAME}/`) {
    const held = options.credentials();
    if (!held) {
      options.logger.warn({ status: 503, remote: req.socket.remoteAddress }, 'instance metadata endpoint has no unexpired credentials to serve');
      return send(503, 'no unexpired credentials on this worker');
    }
    const Expiration = imdsExpiration(held, (options.clock ?? systemClock).now(), req.headers['user-agent']);
    json({ Code: 'Success', LastUpdated: isoSeconds(held.receivedAt), Type: 'AWS-HMAC', ...servedCredentials(held, options.clock), Expiration });
    return options.logger.debug({ seq: held.seq, remote: req.socket.remoteAddress }, 'instance metadata credentials served');
  }
  if (path === REGION_PATH && region) return text(region);
  if (path === IDENTITY_PATH && region) return json({ region });
  // An authorised client probing paths credfwd does not serve (newer SDKs try some first): not a refusal worth a log line.
  send(404, 'not found');
}
