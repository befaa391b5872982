import { readFileSync } from 'node:fs';

/** Where Linux lists TCP sockets with their owners; IPv4-mapped clients of an IPv6 socket appear in tcp6. */
const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

/** True when this host lists its TCP sockets with their owners, so {@link peerOwnerUid} can answer. */
export function canReadSocketOwners(): boolean {
  try {
    readFileSync(TABLES[0] ?? '', 'utf8');
    return true;
  } catch {
    return false;
  }
}

/**
 * The uid owning the client end of a loopback TCP connection, found as the
 * socket whose local port is the client's and whose remote port is ours: both
 * ends live on this host, so the kernel's table names the client's owner. No
 * other connection to our port can share the client's port on loopback, and a
 * listener has no remote port. Undefined when no such socket is listed (the
 * client already gone): the caller refuses then, as it cannot tell who asked.
 */
export function peerOwnerUid(clientPort: number, serverPort: number): number | undefined {
  for (const table of TABLES) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    const uid = findOwner(text, clientPort, serverPort);
    if (uid !== undefined) return uid;
  }
  return undefined;
}

/** Scans one table: `sl local_address rem_address st tx:rx tr:when retrnsmt uid …`, addresses as HEXADDR:HEXPORT. */
export function findOwner(table: string, localPort: number, remotePort: number): number | undefined {
  const local = `:${hexPort(localPort)}`;
  const remote = `:${hexPort(remotePort)}`;
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [, localAddress, remoteAddress, , , , , uid] = fields;
    if (localAddress?.endsWith(local) && remoteAddress?.endsWith(remote) && uid !== undefined && /^\d+$/.test(uid)) return Number(uid);
  }
  return undefined;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}
