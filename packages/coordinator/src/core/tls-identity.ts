import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { certificatePin } from '@credfwd/shared';

/** The coordinator's TLS certificate and the pin agents check it against. */
export interface TlsIdentity {
  cert: string;
  key: string;
  /** Lower-case hex SHA-256 of the certificate's DER encoding. */
  pin: string;
}

/** SHA-256 pin of a PEM certificate, in the form join strings carry. */
export function pinOf(certPem: string): string {
  return certificatePin(new X509Certificate(certPem).raw);
}

/** Wraps a given certificate and key (`--tls-cert/--tls-key`). */
export function fromPem(cert: string, key: string): TlsIdentity {
  return { cert, key, pin: pinOf(cert) };
}

/**
 * A fresh self-signed P-256 certificate. Agents trust it by pin, as kubeadm
 * pins its CA, so no CA or hostname check is involved.
 */
export async function createSelfSignedIdentity(): Promise<TlsIdentity> {
  // Loaded on first use: its X.509 stack is about 190 modules, which a
  // coordinator given --tls-cert, the service's CLI commands and the unit
  // tests would otherwise compile at every start.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'credfwd-coordinator' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 30 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 2, value: hostname() },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return fromPem(pems.cert, pems.private);
}
