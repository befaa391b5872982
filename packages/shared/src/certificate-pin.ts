import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** Lower-case hex SHA-256 of a DER certificate: the pin join strings and `--coordinator-pin` carry. */
export function certificatePin(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Whether the peer of a finished TLS handshake presented the pinned
 * certificate. The pin hashes a public certificate, no secret, so a plain
 * comparison is fine.
 */
export function presentsPin(socket: TLSSocket, pin: string): boolean {
  const der = socket.getPeerCertificate(true).raw;
  return der !== undefined && certificatePin(der) === pin;
}
