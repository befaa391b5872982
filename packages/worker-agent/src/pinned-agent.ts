import { Agent, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { CredfwdError, presentsPin } from '@credfwd/shared';

/**
 * An https agent that trusts exactly one certificate: the coordinator's,
 * whose fingerprint the join string carries (as kubeadm pins its CA). The
 * certificate is self-signed, so chain validation is off and the pin is the
 * whole check; it runs as soon as the TLS handshake completes, before the
 * websocket upgrade is answered and so before any frame can be sent.
 */
export class PinnedAgent extends Agent {
  readonly #pin: string;

  /** @param pin lower-case hex SHA-256 of the coordinator's certificate (DER). */
  constructor(pin: string) {
    // No session cache: a resumed session may not present the certificate to check.
    super({ maxCachedSessions: 0 });
    this.#pin = pin;
  }

  override createConnection(options: RequestOptions): TLSSocket {
    const host = options.host ?? 'localhost';
    const socket = connect({
      host,
      port: Number(options.port),
      // SNI must be a host name, never an IP address.
      servername: isIP(host) ? '' : host,
      rejectUnauthorized: false,
      // No certificate authority is ever asked: an empty list keeps Node from
      // loading its bundled root certificates (and NODE_EXTRA_CA_CERTS) into
      // this context, which it would otherwise parse at the first connect.
      ca: [],
    });
    socket.once('secureConnect', () => {
      if (!presentsPin(socket, this.#pin)) {
        socket.destroy(new CredfwdError(
          'AGENT_PIN_MISMATCH',
          `the coordinator at ${host}:${String(options.port)} presented a certificate that does not match the join string's pin`,
          'copy the join string again from `credfwd launch`; if it is current, something between this worker and the coordinator is intercepting TLS',
        ));
      }
    });
    return socket;
  }
}
