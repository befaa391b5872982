import type { Logger } from '@credfwd/shared';
import type { AuditLog, ClusterLifecycleOptions } from '../core/index.ts';
import type { ReplicaMetrics } from './replica-metrics.ts';
import type { ServiceCluster } from './redis-cluster-records.ts';

/**
 * What the service does on every refresh a replica runs: count it for
 * `/metrics` and write its audit line (a forced one is audited by the admin
 * API too, as the request). The lifecycle's hooks.
 */
export function refreshAccounting(metrics: ReplicaMetrics, audit: AuditLog, logger: Logger): Pick<ClusterLifecycleOptions<ServiceCluster>, 'onRefreshed' | 'onRefreshFailed'> {
  const audited = ({ public: record }: ServiceCluster, result: { outcome: 'ok' | 'failed'; code?: string; reason?: string }): void => {
    audit.record({ action: 'refresh', ...result, principal: record.principal, cluster: record.id, mode: record.mode, roleArn: record.roleArn, scopes: record.scopes, requestId: null });
  };
  return {
    onRefreshed: (cluster, current) => {
      metrics.refresh('success');
      audited(cluster, { outcome: 'ok' });
      logger.info({ clusterId: cluster.public.id, seq: current.seq, expiresAt: current.expiresAt.toISOString() }, 'credentials refreshed');
    },
    onRefreshFailed: (cluster, error) => {
      metrics.refresh('failure');
      audited(cluster, { outcome: 'failed', code: error.code, reason: error.message });
    },
  };
}
