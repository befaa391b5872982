import test from 'ava';
import { ReplicaMetrics } from '../../src/service/replica-metrics.ts';

test('ReplicaMetrics renders gauges and labelled counters in the Prometheus text format', async (t) => {
  const metrics = new ReplicaMetrics({ connectedAgents: () => 3, clusters: async () => 2, earliestExpirySeconds: () => 1200 });
  metrics.refresh('success');
  metrics.refresh('success');
  metrics.stsCall('failure');
  metrics.refused(4401);
  const text = await metrics.render();
  t.regex(text, /^# TYPE credfwd_connected_agents gauge\ncredfwd_connected_agents 3$/m);
  t.regex(text, /^credfwd_clusters 2$/m);
  t.regex(text, /^credfwd_refreshes_total\{outcome="success"\} 2$/m);
  t.regex(text, /^credfwd_sts_calls_total\{outcome="failure"\} 1$/m);
  t.regex(text, /^credfwd_earliest_credential_expiry_seconds 1200$/m);
  t.regex(text, /^credfwd_handshake_refusals_total\{code="4401"\} 1$/m);
  t.true(text.endsWith('\n'));
});

test('ReplicaMetrics leaves out what it cannot know: no expiry without credentials, no cluster count without Redis', async (t) => {
  const text = await new ReplicaMetrics({ connectedAgents: () => 0, clusters: async () => undefined, earliestExpirySeconds: () => undefined }).render();
  t.notRegex(text, /^credfwd_clusters /m);
  t.notRegex(text, /^credfwd_earliest_credential_expiry_seconds /m);
  t.regex(text, /^credfwd_connected_agents 0$/m);
});
