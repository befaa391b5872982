import { CredfwdError } from './errors.ts';

/**
 * The hosts every AWS SDK accepts in AWS_CONTAINER_CREDENTIALS_FULL_URI over
 * plain HTTP besides loopback: ECS's 169.254.170.2 and EKS Pod Identity's
 * 169.254.170.23 and fd00:ec2::23 (botocore's ContainerMetadataFetcher
 * _ALLOWED_HOSTS, the JS SDK v3's credential-provider-http checkUrl). Any other
 * http host, a bridge address included, makes the SDKs refuse the variable.
 */
export const CONTAINER_ENDPOINT_HOSTS = ['169.254.170.2', '169.254.170.23', 'fd00:ec2::23'] as const;

/** Where the agent also serves its container-credentials endpoint for containers on the worker. */
export interface EndpointListen {
  /** One of {@link CONTAINER_ENDPOINT_HOSTS}. */
  host: string;
  /** 0 for an ephemeral port. */
  port: number;
}

const FORM = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/;

/**
 * Reads `--endpoint-listen ADDR[:PORT]` (`[fd00:ec2::23]:PORT` for IPv6;
 * the bare IPv6 address without a port). Anything but the hosts the SDKs accept
 * over http is a USAGE error: the any-address would offer the endpoint on
 * every interface of the worker, and a bridge address would be served but
 * refused by every SDK.
 */
export function parseEndpointListen(value: string, flag = '--endpoint-listen'): EndpointListen {
  const bareV6 = value.toLowerCase() === 'fd00:ec2::23';
  const match = bareV6 ? undefined : FORM.exec(value.trim());
  const host = bareV6 ? 'fd00:ec2::23' : (match?.[1] ?? match?.[2])?.toLowerCase();
  const port = match?.[3] === undefined ? 0 : Number(match[3]);
  const accepted = `SDKs accept only these hosts over plain http: ${CONTAINER_ENDPOINT_HOSTS.join(', ')}; add one to an interface containers route to (e.g. ip addr add 169.254.170.2/32 dev docker0) and pass --endpoint-listen 169.254.170.2[:PORT]`;
  if (host === undefined) throw new CredfwdError('USAGE', `${flag} ${JSON.stringify(value.slice(0, 64))} is not ADDR[:PORT] (IPv6 with a port: [fd00:ec2::23]:PORT)`, accepted);
  if (host === '0.0.0.0' || host === '::' || host === '*') {
    throw new CredfwdError('USAGE', `${flag} ${host} would offer the credentials endpoint on every interface of the worker`, accepted);
  }
  if (host === 'localhost' || host === '::1' || host.startsWith('127.')) {
    throw new CredfwdError('USAGE', `${flag} ${host}: the agent serves loopback already, and a container's loopback is its own`, `containers on the host network use the workload's AWS_CONTAINER_CREDENTIALS_FULL_URI as it is; for others, ${accepted}`);
  }
  if (!(CONTAINER_ENDPOINT_HOSTS as readonly string[]).includes(host)) {
    throw new CredfwdError('USAGE', `${flag} ${host.slice(0, 64)} is not an address the AWS SDKs fetch container credentials from over http`, accepted);
  }
  if (!Number.isInteger(port) || port > 65_535) throw new CredfwdError('USAGE', `${flag} port ${match?.[3] ?? ''} is not from 0 to 65535`, 'leave the port out for an ephemeral one');
  return { host, port };
}

/** `http://HOST:PORT`, with an IPv6 host in brackets. */
export function endpointOrigin(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
