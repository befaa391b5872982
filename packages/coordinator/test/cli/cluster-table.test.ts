import test from 'ava';
import { clusterDetail, clusterListTable, formatTable } from '../../src/cli/cluster-table.ts';

test('formatTable pads each column to its widest cell', (t) => {
  t.is(formatTable(['A', 'BB'], [['xyz', '1'], ['x', '22']]), 'A    BB\nxyz  1\nx    22\n');
});

test('clusterListTable shows principal, role, agents and lease, kept clusters as kept', (t) => {
  const table = clusterListTable([
    { id: 'c-1', mode: 'role', principal: 'alice', roleArn: 'arn:aws:iam::123456789012:role/ml', agents: [{ agentId: 'w1', ackedSeq: 1 }], credentials: { seq: 1, expiresAt: '2026-12-01T12:00:00.000Z', nextRefreshAt: null }, lease: null, refresh: { state: 'ok', lastError: null } },
  ]);
  t.regex(table, /^ID\s+PRINCIPAL\s+MODE\s+ROLE\s+AGENTS\s+EXPIRES\s+REFRESH\s+LEASE\n/);
  t.regex(table, /c-1\s+alice\s+role\s+arn:aws:iam::123456789012:role\/ml\s+1\s+2026-12-01T12:00:00.000Z\s+ok\s+kept\n$/);
  t.is(clusterListTable([]), 'no clusters\n');
});

test('clusterDetail of a role cluster says how to find its calls in CloudTrail', (t) => {
  const detail = clusterDetail({ id: 'c-9', mode: 'role', roleArn: 'arn:aws:iam::123456789012:role/ml', scopes: ['s3://b/p:read'] });
  t.regex(detail, /session name\s+credfwd-c-9/);
  t.regex(detail, /AttributeKey=Username,AttributeValue=credfwd-c-9/);
  t.regex(detail, /scopes\s+s3:\/\/b\/p:read/);
});
