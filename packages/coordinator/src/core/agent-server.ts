import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { MAX_FRAGMENTS, MAX_PAYLOAD_BYTES, type Logger } from '@credfwd/shared';
import type { AdmissionControl } from './admission-control.ts';
import type { TlsIdentity } from './tls-identity.ts';

export interface AgentServerOptions {
  tls: TlsIdentity;
  logger: Logger;
  /** Bounds each step of joining: the TLS handshake, then the upgrade request. */
  handshakeTimeoutMs: number;
  admission: AdmissionControl;
  onRequest?: (request: IncomingMessage, response: ServerResponse) => void;
  onConnection(socket: WebSocket, remoteAddress: string, remotePort: number | undefined): void;
}

/**
 * The agent port: HTTPS with `/v1/agent` upgraded to a websocket. Every
 * bound is set so an unauthenticated peer costs little and not for long;
 * admission refuses upgrades before a socket opens.
 */
export function createAgentServer(options: AgentServerOptions): { server: Server; wss: WebSocketServer } {
  const { handshakeTimeoutMs, admission, logger } = options;
  const server = createServer({
    cert: options.tls.cert,
    key: options.tls.key,
    minVersion: 'TLSv1.2',
    // The same choice https makes with its default ALPNProtocols ['http/1.1'], without the copy of that list each
    // TLS socket then keeps: a 9-byte slice of Node's shared 8 KiB Buffer pool that holds its whole slab alive
    // for as long as the agent stays connected (about 1.4 KiB per agent measured, as joins interleave with other allocations).
    ALPNCallback: ({ protocols }) => (protocols.includes('http/1.1') ? 'http/1.1' : undefined),
    // Node's defaults (2 min for TLS, 1 min for headers) would let a silent peer hold a pending slot far longer than the handshake deadline.
    handshakeTimeout: handshakeTimeoutMs,
    headersTimeout: handshakeTimeoutMs,
    requestTimeout: handshakeTimeoutMs,
    connectionsCheckingInterval: Math.min(1_000, handshakeTimeoutMs),
  });
  // Headers and request deadlines start only with the first request byte; this one ends a connection that sends none. ws clears it on upgrade.
  server.setTimeout(handshakeTimeoutMs);
  if (options.onRequest) server.on('request', options.onRequest);
  server.on('drop', (peer) => admission.dropped(peer?.remoteAddress));
  server.on('tlsClientError', (err, socket) => {
    logger.debug({ remote: socket.remoteAddress, reason: err.message }, 'TLS handshake failed');
  });
  const wss = new WebSocketServer({
    server,
    path: '/v1/agent',
    maxPayload: MAX_PAYLOAD_BYTES,
    maxFragments: MAX_FRAGMENTS,
    perMessageDeflate: false,
    clientTracking: false,
    verifyClient: ({ req }, done) => {
      const refusal = admission.admit(req);
      if (refusal) done(false, refusal.status, refusal.message, { 'Retry-After': String(refusal.retryAfterSeconds) });
      else done(true);
    },
  });
  wss.on('connection', (socket, request) => options.onConnection(socket, request.socket.remoteAddress ?? 'unknown', request.socket.remotePort));
  wss.on('error', (err) => logger.error({ reason: err.message }, 'agent server error'));
  return { server, wss };
}
