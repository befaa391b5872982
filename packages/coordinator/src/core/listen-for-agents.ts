import { CredfwdError, errorMessage } from '@credfwd/shared';
import type { AgentHub } from './agent-hub.ts';
import { isAnyAddress } from './host-port.ts';

/**
 * Starts the hub listening and answers the `HOST:PORT` at which this machine
 * reaches it: every interface is reached at loopback. What remote agents dial
 * is the deployment's choice (a public address, or this one).
 */
export async function listenForAgents(hub: AgentHub, listen: { host: string; port: number }): Promise<string> {
  let bound;
  try {
    bound = await hub.listen(listen.host, listen.port);
  } catch (cause) {
    throw new CredfwdError('CONFIG_INVALID', `cannot listen on ${listen.host}:${listen.port}: ${errorMessage(cause)}`, 'choose another --listen address or port', { cause });
  }
  if (isAnyAddress(bound.address)) return `127.0.0.1:${bound.port}`;
  return `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
}
