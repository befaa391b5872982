import { Agent, createServer, request, type IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/** An STS error answer, as AWS sends it. */
export interface StsFault {
  status: number;
  /** The `<Code>` of the error, e.g. `AccessDenied`. */
  code: string;
  message: string;
}

/** Which requests a fault applies to, and how many times. */
export interface FaultRule {
  fault: StsFault;
  /** Requests it answers before it is used up; every matching request when absent. */
  times?: number;
  /** Only requests whose Query parameters pass; every request when absent. */
  when?: (params: URLSearchParams) => boolean;
}

/** A counting proxy in front of an STS endpoint (moto), from {@link startStsCounter}. */
export interface StsCounter {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL_STS or an STS client's `endpoint`. */
  url: string;
  /** Requests seen with this STS Action (every request when none is given) whose parameters pass `when`. */
  count(action?: string, when?: (params: URLSearchParams) => boolean): number;
  /** The Action of each request seen, in arrival order (`''` where a request named none). */
  calls(): string[];
  /** Forgets every request seen so far. */
  reset(): void;
  /** Answers matching requests with an STS error instead of forwarding them; returns a function that removes the rule. */
  inject(rule: FaultRule): () => void;
  /** Closes the proxy and its connections. Idempotent. */
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The Query-protocol parameters of a request: its query string, or its form body (as the SDKs and the CLI send them). */
function paramsOf(req: IncomingMessage, body: Buffer): URLSearchParams {
  const query = new URL(req.url ?? '/', 'http://counter').searchParams;
  if (query.has('Action')) return query;
  if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return new URLSearchParams(body.toString('utf8'));
  return query;
}

/** The error document STS answers with (Query protocol), byte for byte in shape. */
function errorBody(fault: StsFault): string {
  const escaped = fault.message.replaceAll('&', '&amp;').replaceAll('<', '&lt;');
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n    <Type>${fault.status >= 500 ? 'Receiver' : 'Sender'}</Type>\n    <Code>${fault.code}</Code>\n    <Message>${escaped}</Message>\n  </Error>\n  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`;
}

/**
 * Starts an HTTP proxy on 127.0.0.1 that forwards every request to
 * `targetUrl` unchanged (method, path, headers, body) and streams the answer
 * back, counting requests by STS Action, or answers them with an injected
 * STS error (the fault-injecting proxy of the STS failure tests). Point the launcher at it with
 * AWS_ENDPOINT_URL_STS while workers talk to moto directly, and a test can
 * prove how many STS calls a cluster made. A request is counted once it has
 * fully arrived, before it is forwarded, so the count is current as soon as
 * the caller's promise settles.
 */
export async function startStsCounter(targetUrl: string): Promise<StsCounter> {
  const target = new URL(targetUrl);
  // Its own agent, so stop() can drop the pooled connections to the target.
  const agent = new Agent({ keepAlive: true });
  let seen: URLSearchParams[] = [];
  const rules = new Set<{ rule: FaultRule; left: number }>();

  const faultFor = (params: URLSearchParams): StsFault | undefined => {
    for (const entry of rules) {
      if (entry.left <= 0 || (entry.rule.when && !entry.rule.when(params))) continue;
      entry.left--;
      return entry.rule.fault;
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    readBody(req).then((body) => {
      const params = paramsOf(req, body);
      seen.push(params);
      const fault = faultFor(params);
      if (fault) {
        res.writeHead(fault.status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() }).end(errorBody(fault));
        return;
      }
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
    count: (action, when) => seen.filter((p) => (action === undefined || p.get('Action') === action) && (!when || when(p))).length,
    calls: () => seen.map((p) => p.get('Action') ?? ''),
    reset: () => { seen = []; },
    inject: (rule) => {
      const entry = { rule, left: rule.times ?? Number.POSITIVE_INFINITY };
      rules.add(entry);
      return () => { rules.delete(entry); };
    },
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
