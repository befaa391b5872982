import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const ATTEMPTS = 50;

/**
 * The kernel hands out ports from this range to every `listen(0)` and
 * outgoing connection; the default is Linux's.
 */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high) return [low, high];
  } catch {
    // not Linux: keep the default
  }
  return [32768, 60999];
}

/** Ports no `listen(0)` or outgoing connection takes, well clear of the well-known services' ports. */
function candidatePorts(): [number, number] {
  const [low, high] = ephemeralRange();
  return low > 11_000 ? [10_000, low - 1] : [high + 1, 65_535];
}

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for peers (moto,
 * redis-server, a coordinator behind a proxy) that must be told their port
 * before they start. It lies outside the kernel's ephemeral range: a port
 * that `listen(0)` returned would be handed out again, to another listener
 * or as the source port of an outgoing connection, before the peer bound it
 * (seen as EADDRINUSE under the full suite).
 */
export async function freePort(): Promise<number> {
  const [first, last] = candidatePorts();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = first + Math.floor(Math.random() * (last - first + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port among ${ATTEMPTS} tried in ${first}-${last}`);
}
