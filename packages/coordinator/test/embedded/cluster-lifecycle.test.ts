import test, { type ExecutionContext } from 'ava';
import { CredfwdError, createLogger } from '@credfwd/shared';
import { AgentHub } from '../../src/core/agent-hub.ts';
import { ClusterLifecycle } from '../../src/core/cluster-lifecycle.ts';
import type { Minted, Minter } from '../../src/core/minter.ts';
import type { RefreshError } from '../../src/core/refresh-status.ts';
import { createSelfSignedIdentity } from '../../src/core/tls-identity.ts';
import { DirectRoute } from '../../src/embedded/direct-route.ts';
import { MemoryClusterRecords, type KeptCluster } from '../../src/embedded/memory-cluster-records.ts';
import { TimerRefresh } from '../../src/embedded/timer-refresh.ts';
import { within } from '../../../../tests/helpers/deadline.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const HOUR_MS = 3_600_000;
const logger = createLogger({ name: 'test', level: 'silent' });
const tls = await createSelfSignedIdentity();

function minted(expiresInMs: number): Minted {
  return {
    credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE01', secretAccessKey: 'secret', sessionToken: 'token', expiration: new Date(NOW + expiresInMs).toISOString() },
    expiresAt: new Date(NOW + expiresInMs),
    source: 'get-session-token',
  };
}

/** A minter whose answers the test decides one by one; `mints` counts the calls. */
function plannedMinter(answers: Array<Minted | CredfwdError | Promise<Minted>>): Minter & { mints: number } {
  const minter = {
    mints: 0,
    async mint(): Promise<Minted> {
      minter.mints += 1;
      const next = answers.shift();
      if (!next) throw new Error('no mint planned');
      if (next instanceof CredfwdError) throw next;
      return next;
    },
  };
  return minter;
}

/**
 * The embedded deployment's lifecycle (memory records, a timer, the direct
 * route to a real hub) on a frozen clock and a fixed jitter.
 */
async function lifecycle(t: ExecutionContext, answers: Array<Minted | CredfwdError | Promise<Minted>>, intervalSeconds?: number) {
  const hub = new AgentHub({ tls, logger });
  const records = new MemoryClusterRecords<KeptCluster>();
  const refreshed: number[] = [];
  let onRefreshed = (): void => undefined;
  /** Resolves once `count` refreshes were stored and pushed. */
  const refreshes = (count: number) => new Promise<void>((resolve) => {
    onRefreshed = () => { if (refreshed.length >= count) resolve(); };
  });
  const failures: RefreshError[] = [];
  const timer: TimerRefresh = new TimerRefresh((job) => cycle.refresh(job), () => NOW);
  const cycle: ClusterLifecycle<KeptCluster> = new ClusterLifecycle<KeptCluster>({
    records, timer, route: new DirectRoute(hub), logger,
    onRefreshed: (_record, current) => { refreshed.push(current.seq); onRefreshed(); },
    onRefreshFailed: (_record, error) => failures.push(error),
    now: () => NOW,
    random: () => 0.5,
  });
  t.teardown(async () => {
    timer.close();
    await hub.close();
  });
  const minter = plannedMinter(answers);
  const create = (first: Minted) => cycle.create({
    record: { id: 'c-test', minter, intervalSeconds },
    session: { id: 'c-test', verifier: 'v', delivery: 'env', environ: {}, region: null },
    first, refreshed: true, intervalSeconds,
  });
  return { cycle, records, hub, minter, refreshed, refreshes, failures, create };
}

test('ClusterLifecycle.create stores the first credentials as seq 1, opens the cluster to agents and plans its refresh at half life', async (t) => {
  const { records, hub, create } = await lifecycle(t, []);
  const current = await create(minted(HOUR_MS));
  t.like(current, { seq: 1, refreshAt: new Date(NOW + HOUR_MS / 2) });
  t.true(hub.hasCluster('c-test'));
  t.deepEqual(records.statusOf('c-test'), {
    state: 'scheduled',
    expiresAt: new Date(NOW + HOUR_MS),
    lastRefreshAt: new Date(NOW),
    nextRefreshAt: new Date(NOW + HOUR_MS / 2),
    consecutiveFailures: 0,
    lastError: undefined,
  });
});

test('ClusterLifecycle refreshes when its timer is due, under the next seq, and plans the one after', async (t) => {
  // A 10 ms rotation: the timer fires almost at once on the real event loop, whatever the frozen clock says.
  const { records, minter, refreshed, refreshes, create } = await lifecycle(t, [minted(2 * HOUR_MS), minted(3 * HOUR_MS)], 0.01);
  const two = refreshes(2);
  await create(minted(HOUR_MS));
  await within(two, 5_000, 'two timed refreshes');
  t.deepEqual(refreshed, [2, 3]);
  t.is(minter.mints, 2);
  t.like(await records.current('c-test'), { seq: 3, expiresAt: new Date(NOW + 3 * HOUR_MS) });
});

test('ClusterLifecycle.refreshNow after a refusal retrying cannot fix: needs-attention, no refresh planned, the error thrown and reported', async (t) => {
  const denied = new CredfwdError('STS_ACCESS_DENIED', 'AccessDenied', 'grant sts:GetSessionToken');
  const { cycle, records, failures, create } = await lifecycle(t, [denied]);
  await create(minted(HOUR_MS));
  await t.throwsAsync(cycle.refreshNow('c-test'), { code: 'STS_ACCESS_DENIED', message: 'AccessDenied' });
  t.like(records.statusOf('c-test'), { state: 'needs-attention', nextRefreshAt: undefined, consecutiveFailures: 1, expiresAt: new Date(NOW + HOUR_MS) });
  t.like(records.statusOf('c-test')?.lastError, { code: 'STS_ACCESS_DENIED', retryable: false, at: new Date(NOW) });
  t.is(failures.length, 1);
  t.like(await records.current('c-test'), { seq: 1 }, 'the credentials in use stay');
});

test('ClusterLifecycle backs off after a retryable failure, and a refresh that works clears the failures', async (t) => {
  const throttled = new CredfwdError('STS_THROTTLED', 'Throttling', 'wait', { retryable: true });
  const { cycle, records, refreshed, create } = await lifecycle(t, [throttled, minted(2 * HOUR_MS)]);
  await create(minted(HOUR_MS));
  await t.throwsAsync(cycle.refreshNow('c-test'), { code: 'STS_THROTTLED' });
  // First backoff: random 0.5 of at most 1 s, planned on the timer.
  t.like(records.statusOf('c-test'), { state: 'backing-off', nextRefreshAt: new Date(NOW + 500), consecutiveFailures: 1 });
  await cycle.refreshNow('c-test');
  t.like(records.statusOf('c-test'), { state: 'scheduled', consecutiveFailures: 0, lastError: undefined, expiresAt: new Date(NOW + 2 * HOUR_MS) });
  t.deepEqual(refreshed, [2]);
});

test('ClusterLifecycle shares a refresh in flight: two asks, one mint', async (t) => {
  let release!: (m: Minted) => void;
  const { cycle, minter, refreshed, create } = await lifecycle(t, [new Promise<Minted>((r) => { release = r; })]);
  await create(minted(HOUR_MS));
  const both = Promise.all([cycle.refreshNow('c-test'), cycle.refreshNow('c-test')]);
  await new Promise((r) => setImmediate(r));
  release(minted(2 * HOUR_MS));
  await within(both, 5_000, 'both refreshes');
  t.is(minter.mints, 1);
  t.deepEqual(refreshed, [2]);
});

test('ClusterLifecycle.delete while a mint is in flight drops what it mints, revokes the cluster and leaves nothing to refresh', async (t) => {
  let release!: (m: Minted) => void;
  const { cycle, records, hub, refreshed, failures, create } = await lifecycle(t, [new Promise<Minted>((r) => { release = r; })]);
  await create(minted(HOUR_MS));
  const refreshing = cycle.refreshNow('c-test');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(await cycle.delete('c-test'), { seq: 1 });
  t.false(hub.hasCluster('c-test'));
  release(minted(2 * HOUR_MS));
  await within(refreshing, 5_000, 'the refresh in flight');
  t.is(await records.current('c-test'), undefined);
  t.deepEqual(refreshed, []);
  t.deepEqual(failures, []);
  t.false(await cycle.refreshNow('c-test'), 'a deleted cluster is not refreshed');
  t.is(await cycle.delete('c-test'), undefined);
});

test('ClusterLifecycle ignores a job the cluster has moved past: no second mint for one seq', async (t) => {
  const { cycle, minter, create } = await lifecycle(t, [minted(2 * HOUR_MS)]);
  await create(minted(HOUR_MS));
  await cycle.refresh({ clusterId: 'c-test', seq: 1 });
  await cycle.refresh({ clusterId: 'c-test', seq: 1 });
  t.is(minter.mints, 1);
});

test('ClusterLifecycle.run refuses a task env too large for an agent before any frame is sent', async (t) => {
  const { cycle, create } = await lifecycle(t, []);
  await create(minted(HOUR_MS));
  await t.throwsAsync(cycle.run('c-test', ['true'], { env: { BIG: 'x'.repeat(100_000) } }), { code: 'ENV_TOO_LARGE' });
  t.deepEqual(await cycle.run('c-test', ['true']), [], 'no agent is ready');
});
