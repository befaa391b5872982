/** A cluster as the admin API shows it (`GET /v1/clusters/:id`); the fields `credfwd clusters` prints. */
export interface ShownCluster {
  id: string;
  mode: string;
  region?: string | null;
  createdAt?: string;
  principal?: string | null;
  roleArn?: string | null;
  scopes?: string[];
  lease?: { seconds: number; expiresAt: string | null } | null;
  credentials?: { seq: number; expiresAt: string; nextRefreshAt: string | null } | null;
  refresh?: { state: string; lastError: { code: string } | null } | null;
  agents?: { agentId: string; replicaId?: string; remote?: string; ackedSeq: number }[];
}

/** Columns padded to their widest cell, two spaces apart, as kubectl prints them. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function refreshOf(c: ShownCluster): string {
  if (!c.refresh) return c.mode === 'role' ? 'scheduled' : '-';
  return c.refresh.lastError && c.refresh.state !== 'ok' ? `${c.refresh.state} (${c.refresh.lastError.code})` : c.refresh.state;
}

/** `credfwd clusters list` on a terminal. */
export function clusterListTable(clusters: ShownCluster[]): string {
  if (clusters.length === 0) return 'no clusters\n';
  return formatTable(
    ['ID', 'PRINCIPAL', 'MODE', 'ROLE', 'AGENTS', 'EXPIRES', 'REFRESH', 'LEASE'],
    clusters.map((c) => [
      c.id, c.principal ?? '-', c.mode, c.roleArn ?? '-', String(c.agents?.length ?? 0),
      c.credentials?.expiresAt ?? '-', refreshOf(c), c.lease ? (c.lease.expiresAt ?? `${c.lease.seconds}s`) : 'kept',
    ]),
  );
}

/**
 * `credfwd clusters show` on a terminal: the cluster, its agents, and how to
 * find what its sessions did in CloudTrail (an assumed role's session name
 * is CloudTrail's `Username`; the cluster also tags every session).
 */
export function clusterDetail(c: ShownCluster): string {
  const lines = [
    ['cluster', c.id], ['principal', c.principal ?? '-'], ['mode', c.mode], ['role', c.roleArn ?? '-'],
    ['scopes', c.scopes && c.scopes.length > 0 ? c.scopes.join(', ') : '-'], ['region', c.region ?? '-'], ['created', c.createdAt ?? '-'],
    ['credentials', c.credentials ? `seq ${c.credentials.seq}, expire ${c.credentials.expiresAt}` : '-'],
    ['refresh', refreshOf(c)], ['lease', c.lease ? `${c.lease.seconds}s, lapses ${c.lease.expiresAt ?? '-'}` : 'kept until deleted'],
    ['session name', c.mode === 'none' ? '-' : `credfwd-${c.id}`],
  ];
  let out = formatTable(['FIELD', 'VALUE'], lines).split('\n').slice(1).join('\n');
  out += `\n${formatTable(['AGENT', 'REPLICA', 'REMOTE', 'ACKED SEQ'], (c.agents ?? []).map((a) => [a.agentId, a.replicaId ?? '-', a.remote ?? '-', String(a.ackedSeq)]))}`;
  if (c.mode === 'role') {
    out += `\nits API calls in CloudTrail:\n  aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=credfwd-${c.id}\n`;
  }
  return out;
}
