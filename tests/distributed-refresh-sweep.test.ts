import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { AdminClient } from '@credfwd/coordinator';
import { Replica } from '@credfwd/coordinator/service';
import { capturedLogger } from './helpers/captured-logger.ts';
import { startMoto } from './helpers/moto.ts';
import { prefixFor, startRedis } from './helpers/redis.ts';
import { eventually } from './helpers/replicas.ts';

// BullMQ's layout under the service prefix, as `credfwd serve` makes it (distributed-refresh.ts, redis-keys.ts).
const QUEUE = 'refresh';
const jobId = (clusterId: string, seq: number): string => `refresh-${clusterId}-${seq}`;

test('a refresh whose planning was lost (a replica killed between storing a cluster and planning it) is planned again by the sweep', async (t) => {
  const [redis, moto] = await Promise.all([startRedis(), startMoto()]);
  t.teardown(() => Promise.all([redis.stop(), moto.stop()]));
  // The replica mints roles with its own identity; moto accepts any signature.
  process.env.AWS_ACCESS_KEY_ID = 'AKIAREPLICASWEEP0001';
  process.env.AWS_SECRET_ACCESS_KEY = 'replica-sweep-secret';
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ENDPOINT_URL_STS = moto.url;
  const prefix = prefixFor(t.title).slice(0, -1);
  const adminToken = randomBytes(32).toString('base64url');
  const replica = await Replica.start({
    logger: capturedLogger().logger,
    listen: '127.0.0.1:0',
    redisUrl: redis.url,
    redisPrefix: prefix,
    secrets: { stateKey: randomBytes(32), adminToken },
    refreshSweepMs: 200,
  });
  t.teardown(() => replica.close());
  const admin = new AdminClient({ url: `https://${replica.address}`, pin: replica.pin, adminToken });
  const created = await admin.request('POST', '/v1/clusters', { credentials: 'role:arn:aws:iam::123456789012:role/swept', durationSeconds: 3600 });
  t.is(created.status, 201);
  const clusterId = (created.body as { id: string }).id;
  const shown = await admin.request('GET', `/v1/clusters/${clusterId}`);
  const seq = (shown.body as { credentials: { seq: number } }).credentials.seq;

  const queue = new Queue(QUEUE, { connection: { url: redis.url }, prefix: `${prefix}:bull` });
  t.teardown(() => queue.close());
  const planned = await queue.getJob(jobId(clusterId, seq));
  t.is(await planned?.getState(), 'delayed', 'creating the cluster planned its first refresh');
  const plannedAt = planned?.timestamp ?? Infinity;
  await planned?.remove();

  // The sweep may plan it again at once (it runs every 200 ms): a job created after the removal is the proof.
  const replanned = await eventually(async () => {
    const job = await queue.getJob(jobId(clusterId, seq));
    return job && job.timestamp > plannedAt ? job : undefined;
  }, 5_000, 'the sweep plans the lost refresh again');
  t.is(await replanned.getState(), 'delayed');
  t.deepEqual(replanned.data, { clusterId, seq });
});
