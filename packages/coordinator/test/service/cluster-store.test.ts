import { randomBytes } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { Redis } from 'ioredis';
import { createLogger, errorMessage } from '@credfwd/shared';
import type { CurrentCredentials } from '../../src/core/credential-push.ts';
import { refreshedStatus, refreshStatusToJson } from '../../src/core/refresh-status.ts';
import { ClusterStore, type PublicClusterRecord, type SecretClusterRecord } from '../../src/service/cluster-store.ts';
import { RedisClusterRecords } from '../../src/service/redis-cluster-records.ts';
import { RedisKeys } from '../../src/service/redis-keys.ts';
import { ReplicaMetrics } from '../../src/service/replica-metrics.ts';
import { prefixFor, startRedis, type TestRedis } from '../../../../tests/helpers/redis.ts';

// REDIS_URL when set, else a private redis-server on a free port (tests/helpers/redis.ts); every test keeps to its own prefix.
const started: TestRedis | Error = await startRedis().catch((err: unknown) => new Error(errorMessage(err)));
const hooks = anyTest as TestFn<{ redis: Redis }>;
const test = started instanceof Error ? hooks.skip : hooks;
if (started instanceof Error) console.warn(`cluster-store tests skipped: no Redis (set REDIS_URL or install redis-server): ${started.message}`);

hooks.before((t) => {
  if (started instanceof Error) return;
  t.context = { redis: new Redis(started.url, { maxRetriesPerRequest: 1, lazyConnect: false }) };
});
hooks.after.always(async (t) => {
  await t.context.redis?.quit();
  if (!(started instanceof Error)) await started.stop();
});

const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENxyzzy';
const ENVIRON_SECRET = 'environ-value-hunter2';
const EXTERNAL_ID = 'external-id-sesame';

function record(id: string, leaseSeconds: number | null = null): PublicClusterRecord {
  return {
    id, mode: 'role', delivery: 'env', region: 'eu-west-1', durationSeconds: 3600, refreshIntervalSeconds: null, leaseSeconds,
    verifier: 'verifier-not-a-token', createdAt: '2026-12-01T10:00:00.000Z', principal: 'alice', roleArn: 'arn:aws:iam::123456789012:role/r', scopes: [],
  };
}
const secret: SecretClusterRecord = { spec: { kind: 'role', roleArn: 'arn:aws:iam::123456789012:role/r', externalId: EXTERNAL_ID }, environ: { API_KEY: ENVIRON_SECRET } };
function credentials(seq: number, secretAccessKey = SECRET_KEY): CurrentCredentials {
  const expiresAt = new Date(Date.parse('2026-12-01T11:00:00.000Z'));
  return { seq, credentials: { accessKeyId: 'ASIAEXAMPLE000000001', secretAccessKey, sessionToken: SESSION_TOKEN, expiration: expiresAt.toISOString() }, expiresAt, refreshAt: new Date(Date.parse('2026-12-01T10:30:00.000Z')) };
}

/** A store under this test's own prefix, and a way to read every key under it as Redis holds it. */
function store(t: ExecutionContext<{ redis: Redis }>, stateKey: Uint8Array = randomBytes(32)) {
  const keys = new RedisKeys(prefixFor(t.title));
  const { redis } = t.context;
  const own = async (): Promise<string[]> => (await redis.keys(`${keys.prefix}*`)).sort();
  /** Every byte stored under the prefix, whatever each key's type. */
  const rawDump = async (): Promise<string> => {
    const parts: string[] = [];
    for (const key of await own()) {
      const type = await redis.type(key);
      if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'set') parts.push(...await redis.smembers(key));
      else if (type === 'zset') parts.push(...await redis.zrange(key, '0', '-1'));
      else parts.push(String(await redis.get(key)));
    }
    return parts.join('\n');
  };
  t.teardown(async () => { for (const key of await own()) await redis.del(key); });
  return { store: new ClusterStore(redis, keys, stateKey), keys, own, rawDump };
}

test('a created cluster reads back whole: public record, sealed secrets, current credentials', async (t) => {
  const { store: s } = store(t);
  await s.create(record('c1'), secret, credentials(5));
  t.deepEqual(await s.get('c1'), record('c1'));
  t.deepEqual(await s.secret('c1'), secret);
  t.deepEqual(await s.current('c1'), credentials(5));
  t.deepEqual(await s.ids(), ['c1']);
  t.is(await s.count(), 1);
  // A kept cluster (leaseSeconds null) has no lease.
  t.is(await s.leaseExpiry('c1'), undefined);
  t.is(await s.refreshStatus('c1'), undefined, 'no status was given');
});

test('a refreshed cluster is created with its refresh status in the same step', async (t) => {
  const { store: s } = store(t);
  const first = credentials(1);
  const status = refreshStatusToJson(refreshedStatus(first.expiresAt, new Date(Date.parse('2026-12-01T10:00:00.000Z')), first.refreshAt));
  await s.create(record('c1'), secret, first, status);
  t.deepEqual(await s.refreshStatus('c1'), status);
});

test('no secret reaches Redis in the clear, and another state key cannot open what is there', async (t) => {
  const stateKey = randomBytes(32);
  const { store: s, keys, rawDump } = store(t, stateKey);
  await s.create(record('c1'), secret, credentials(1));
  await s.saveCurrent('c1', credentials(2, `${SECRET_KEY}-2`));
  const raw = await rawDump();
  t.true(raw.includes('verifier-not-a-token'), 'the dump does read the cluster hash');
  for (const value of [SECRET_KEY, SESSION_TOKEN, ENVIRON_SECRET, EXTERNAL_ID, 'API_KEY', Buffer.from(SECRET_KEY).toString('base64'), Buffer.from(stateKey).toString('base64url')]) {
    t.false(raw.includes(value), `${value.slice(0, 12)}… is stored in the clear`);
  }
  const other = new ClusterStore(t.context.redis, keys, randomBytes(32));
  await t.throwsAsync(other.secret('c1'));
  await t.throwsAsync(other.current('c1'));
});

test('sequence numbers only grow, per prefix, shared by every store on it', async (t) => {
  const { store: a, keys } = store(t);
  const b = new ClusterStore(t.context.redis, keys, randomBytes(32));
  const seen = [await a.nextSeq(), await b.nextSeq(), await a.nextSeq()];
  t.deepEqual(seen, [1, 2, 3]);
  t.deepEqual(await Promise.all(Array.from({ length: 20 }, () => b.nextSeq())).then((n) => new Set(n).size), 20, 'concurrent callers never share a number');
});

test('newer credentials replace the old ones, with their refresh status in the same step', async (t) => {
  const { store: s } = store(t);
  await s.create(record('c1'), secret, credentials(1));
  const status = refreshStatusToJson(refreshedStatus(new Date('2026-12-01T12:00:00.000Z'), new Date('2026-12-01T11:00:00.000Z'), undefined));
  t.true(await s.saveCurrent('c1', credentials(2, 'second-secret-key'), status));
  t.deepEqual(await s.current('c1'), credentials(2, 'second-secret-key'));
  t.deepEqual(await s.refreshStatus('c1'), status);
  await s.saveRefreshStatus('c1', { ...status, consecutiveFailures: 3 });
  t.is((await s.refreshStatus('c1'))?.consecutiveFailures, 3);
});

test('a cluster that does not exist reads as undefined, and writes to it leave nothing behind', async (t) => {
  const { store: s, own } = store(t);
  t.is(await s.get('nope'), undefined);
  t.is(await s.secret('nope'), undefined);
  t.is(await s.current('nope'), undefined);
  t.is(await s.refreshStatus('nope'), undefined);
  t.is(await s.delete('nope'), undefined);
  // A refresh or a lease renewal racing a deletion must not bring a half cluster back.
  t.false(await s.saveCurrent('nope', credentials(1)));
  await s.saveRefreshStatus('nope', refreshStatusToJson(refreshedStatus(new Date(), new Date(), undefined)));
  t.is(await s.renewLease('nope', 60), undefined);
  t.deepEqual(await s.ids(), []);
  t.deepEqual(await own(), []);
});

test('deletion answers what it removed once, and leaves no key under the prefix but the sequence counter', async (t) => {
  const { store: s, keys, own } = store(t);
  const seq = await s.nextSeq();
  await s.create(record('leased', 300), secret, credentials(seq));
  await s.create({ ...record('kept'), mode: 'none' }, { spec: { kind: 'none' }, environ: {} }, null);
  const expiry = await s.leaseExpiry('leased');
  t.truthy(expiry);
  t.is(await s.delete('leased', true), undefined, 'a lease that has not lapsed is not deleted as lapsed');
  t.deepEqual(await s.lapsedLeases(10), []);

  // Two deleters at once (two replicas' sweeps): exactly one gets the answer.
  const answers = await Promise.all([s.delete('leased'), s.delete('leased')]);
  const removed = answers.filter((a) => a !== undefined);
  t.is(removed.length, 1);
  t.deepEqual(removed[0], { seq, leaseSeconds: 300, leaseExpiredAt: expiry });
  t.deepEqual(await s.delete('kept'), { seq: undefined, leaseSeconds: null, leaseExpiredAt: undefined });
  t.is(await s.leaseExpiry('leased'), undefined);
  t.is(await s.renewLease('leased', 300), undefined);
  // The counter stays on purpose: sequence numbers must keep growing across clusters.
  t.deepEqual(await own(), [keys.seq]);
});

test('a leased cluster gets its lease with its record, and renewing moves it forward', async (t) => {
  const { store: s } = store(t);
  const [seconds] = await t.context.redis.time();
  await s.create(record('c1', 60), secret, null);
  const first = await s.leaseExpiry('c1');
  // Leases run on Redis's clock: 60 s from Redis's now, give or take the round trips.
  t.true(first !== undefined && Math.abs(first.getTime() - (Number(seconds) * 1000 + 60_000)) < 2_000, String(first));
  const renewed = await s.renewLease('c1', 600);
  t.true(renewed !== undefined && first !== undefined && renewed.getTime() > first.getTime());
  t.deepEqual(await s.leaseExpiry('c1'), renewed);
  t.is(await s.current('c1'), undefined, 'created without credentials (null mode)');
});

test('RedisClusterRecords gives the lifecycle what it needs: statuses as they were, a minter for role clusters only, the seq a deletion frees', async (t) => {
  const { store: s } = store(t);
  const metrics = new ReplicaMetrics({ connectedAgents: () => 0, clusters: async () => undefined, earliestExpirySeconds: () => undefined });
  const records = new RedisClusterRecords(s, metrics, createLogger({ name: 'test', level: 'silent' }));
  const first = credentials(await records.nextSeq());
  const status = refreshedStatus(first.expiresAt, new Date(Date.parse('2026-12-01T10:00:00.000Z')), first.refreshAt);
  await records.create({ public: { ...record('c1'), refreshIntervalSeconds: 60 }, secret }, first, status);
  t.deepEqual(await records.refreshStatus('c1'), status);
  t.like(await records.refreshable('c1'), { intervalSeconds: 60, record: { secret } });
  const forwarded = { ...record('c2'), mode: 'forward' as const, roleArn: null };
  await records.create({ public: forwarded, secret: { spec: { kind: 'forward' }, environ: {} } }, credentials(await records.nextSeq()), undefined);
  t.is(await records.refreshable('c2'), undefined, 'forwarded credentials are the launcher\'s: the service does not refresh them');
  t.like(await records.delete('c1'), { seq: first.seq });
  t.is(await records.refreshable('c1'), undefined);
  t.false(await records.saveCurrent('c1', credentials(9), status), 'a deleted cluster takes no credentials');
});
