import { Agent, createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A counting proxy in front of an STS endpoint (moto), from {@link startStsCounter}. */
export interface StsCounter {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL_STS or an STS client's `endpoint`. */
  url: string;
  /** Requests seen with this STS Action; every request seen when no action is given. */
  count(action?: string): number;
  /** The Action of each request seen, in arrival order (`''` where a request named none). */
  calls(): string[];
  /** Forgets every request seen so far. */
  reset(): void;
  /** Closes the proxy and its connections. Idempotent. */
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The STS Action of a Query-protocol request: in the query string, or in a form body (as the SDKs and the CLI send it). */
function actionOf(req: IncomingMessage, body: Buffer): string {
  const fromQuery = new URL(req.url ?? '/', 'http://counter').searchParams.get('Action');
  if (fromQuery) return fromQuery;
  if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
    return new URLSearchParams(body.toString('utf8')).get('Action') ?? '';
  }
  return '';
}

/**
 * Starts an HTTP proxy on 127.0.0.1 that forwards every request to
 * `targetUrl` unchanged (method, path, headers, body) and streams the answer
 * back, counting requests by STS Action. Point the launcher at it with
 * AWS_ENDPOINT_URL_STS while workers talk to moto directly, and a test can
 * prove how many STS calls a cluster made. A request is counted once it has
 * fully arrived, before it is forwarded, so the count is current as soon as
 * the caller's promise settles.
 */
export async function startStsCounter(targetUrl: string): Promise<StsCounter> {
  const target = new URL(targetUrl);
  // Its own agent, so stop() can drop the pooled connections to the target.
  const agent = new Agent({ keepAlive: true });
  let seen: string[] = [];

  const server = createServer((req, res) => {
    readBody(req).then((body) => {
      seen.push(actionOf(req, body));
      const upstream = request({
        agent,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        // Raw headers keep Host and every signed header byte for byte.
        headers: req.rawHeaders,
      }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
        answer.pipe(res);
      });
      upstream.on('error', (err) => {
        if (res.headersSent) res.destroy(err);
        else res.writeHead(502, { 'content-type': 'text/plain' }).end(`sts-counter could not reach ${targetUrl}: ${err.message}`);
      });
      upstream.end(body);
    }, (err: unknown) => res.destroy(err instanceof Error ? err : new Error(String(err))));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    count: (action) => (action === undefined ? seen.length : seen.filter((a) => a === action).length),
    calls: () => [...seen],
    reset: () => { seen = []; },
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SDK clients keep connections alive; close() alone would wait for them.
        server.closeAllConnections();
        agent.destroy();
      });
      return stopping;
    },
  };
}
