import { AdminClient } from '@credfwd/coordinator';
import { CREDFWD_BIN, isolatedEnv } from './credfwd-cli.ts';
import { freePort } from './free-port.ts';
import type { Moto } from './moto.ts';
import type { ServiceSecrets } from './replicas.ts';
import { startService, type Service } from './service.ts';
import type { SshHosts } from './ssh-hosts.ts';

/**
 * moto (STS, IAM, instance metadata) on the hosts' service address, so
 * workloads on every host reach it; `startMoto` listens on loopback, which
 * no host can reach.
 */
export async function startHostMoto(hosts: SshHosts): Promise<Moto> {
  const port = await freePort();
  const service = await startService({ command: 'moto_server', args: ['-H', hosts.serviceAddress, '-p', String(port)], ready: /Running on http/ });
  return { url: `http://${hosts.serviceAddress}:${port}`, port, stop: service.stop };
}

/** One `credfwd serve` replica listening where the hosts reach it. */
export interface HostReplica {
  service: Service;
  /** `https://SERVICE_ADDRESS:PORT`, for `credfwd launch --coordinator`. */
  url: string;
  /** Hex SHA-256 of the service certificate. */
  pin: string;
  admin: AdminClient;
}

/**
 * Starts `credfwd serve` (the built bin) on the hosts' service address,
 * secrets in its environment only, and waits for its pin line. Its join
 * strings then name an address agents on the hosts dial directly, as a
 * service's public address would be.
 */
export async function startHostReplica(hosts: SshHosts, redisUrl: string, prefix: string, secrets: ServiceSecrets, env: Record<string, string>): Promise<HostReplica> {
  const port = await freePort();
  const service = await startService({
    command: process.execPath,
    args: ['--', CREDFWD_BIN, 'serve', '--listen', `${hosts.serviceAddress}:${port}`, '--redis', redisUrl, '--redis-prefix', prefix],
    env: isolatedEnv({ CREDFWD_STATE_KEY: secrets.stateKey, CREDFWD_ADMIN_TOKEN: secrets.adminToken, CREDFWD_LOG_LEVEL: 'info', ...env }),
    ready: /^pin sha256:[0-9a-f]{64}$/,
    graceMs: 2_000,
  });
  const pin = service.readyLine.slice('pin sha256:'.length);
  const url = `https://${hosts.serviceAddress}:${port}`;
  return { service, url, pin, admin: new AdminClient({ url, pin, adminToken: secrets.adminToken }) };
}
