import { CredfwdError } from '@credfwd/shared';

/** One host as the user named it, and how `ssh` is told to reach it. */
export interface SshHost {
  /** As the user wrote it: `[user@]host[:port]` or an alias of their SSH config. */
  name: string;
  /** `[user@]host`: what `ssh` takes as its destination, so the user's config still applies to it. */
  destination: string;
  /** Given only when the user wrote one, so ssh_config's `Port` applies otherwise. */
  port?: number;
  /** The name reduced to agent-id characters, unique within the launch. */
  label: string;
}

// Brackets for IPv6 (`[::1]:2222`), as ssh's own `ssh://` form writes them.
const HOST = /^(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^@:\s[\]]+)(?::(\d{1,5}))?$/;

/**
 * Parses `[user@]host[:port]`. A name starting with `-` is refused: it would
 * reach `ssh` as an option however it is placed.
 */
export function parseSshHosts(names: readonly string[]): SshHost[] {
  if (names.length === 0) throw invalid('no hosts were given', 'pass at least one host');
  const seen = new Set<string>();
  const labels = new Set<string>();
  return names.map((name) => {
    const match = HOST.exec(name);
    if (!match || [match[1], match[2]].some((part) => part?.startsWith('-'))) {
      throw invalid(`host ${JSON.stringify(name.slice(0, 200))} is not [user@]host[:port]`, 'name each host as [user@]host[:port] or an alias of your SSH config');
    }
    if (seen.has(name)) throw invalid(`host ${name} is listed twice`, 'list each host once; --workers-per-host starts several agents on each');
    seen.add(name);
    const [, user, host, port] = match;
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw invalid(`host ${name} has port ${port}, outside 1-65535`, 'fix the port');
    const hostname = host!.startsWith('[') ? host!.slice(1, -1) : host!;
    let label = name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48);
    for (let n = 2; labels.has(label); n++) label = `${name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 44)}-${n}`;
    labels.add(label);
    return {
      name,
      destination: user === undefined ? hostname : `${user}@${hostname}`,
      ...(port === undefined ? {} : { port: Number(port) }),
      label,
    };
  });
}

function invalid(message: string, hint: string): CredfwdError {
  return new CredfwdError('CONFIG_INVALID', message, hint);
}
