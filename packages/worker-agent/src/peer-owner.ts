import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

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
export async function peerOwnerUid(clientPort: number, serverPort: number): Promise<number | undefined> {
  for (const table of TABLES) {
    let text: string;
    try {
      // Read off the event loop: a busy host lists thousands of sockets, and every other client waits meanwhile.
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    const uid = findOwner(text, clientPort, serverPort);
    if (uid !== undefined) return uid;
  }
  return undefined;
}

/**
 * Scans one table: `sl local_address rem_address st tx:rx tr:when retrnsmt uid …`,
 * addresses as HEXADDR:HEXPORT. Only lines whose local port matches are split,
 * so a table of thousands of sockets costs a string search, not a parse.
 */
export function findOwner(table: string, localPort: number, remotePort: number): number | undefined {
  const local = `:${hexPort(localPort)} `;
  const remote = `:${hexPort(remotePort)}`;
  for (let at = table.indexOf(local); at !== -1; at = table.indexOf(local, at + local.length)) {
    const start = table.lastIndexOf('\n', at) + 1;
    const end = table.indexOf('\n', at);
    const [, localAddress, remoteAddress, , , , , uid] = table.slice(start, end === -1 ? undefined : end).trim().split(/\s+/);
    if (localAddress?.endsWith(local.trimEnd()) && remoteAddress?.endsWith(remote) && uid !== undefined && /^\d+$/.test(uid)) return Number(uid);
  }
  return undefined;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}
