import test from 'ava';
import { CredfwdError, createLogger } from '@credfwd/shared';
import type { Minted } from '../../src/core/minter.ts';
import { RefreshScheduler } from '../../src/core/refresh-scheduler.ts';
import type { RefreshError } from '../../src/core/refresh-status.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const HOUR_MS = 3_600_000;

function minted(expiresInMs: number): Minted {
  return {
    credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE01', secretAccessKey: 'secret', sessionToken: 'token', expiration: new Date(NOW + expiresInMs).toISOString() },
    expiresAt: new Date(NOW + expiresInMs),
    source: 'get-session-token',
  };
}

/** A scheduler on a frozen clock and a fixed jitter, whose mints the test decides one by one. */
function scheduler(mints: Array<Minted | CredfwdError>) {
  const published: Array<{ minted: Minted; refreshAt: Date }> = [];
  const failures: RefreshError[] = [];
  const refresh = new RefreshScheduler({
    clusterId: 'c-test',
    logger: createLogger({ name: 'test', level: 'silent' }),
    mint: async () => {
      const next = mints.shift();
      if (!next) throw new Error('no mint planned');
      if (next instanceof CredfwdError) throw next;
      return next;
    },
    publish: async (m, refreshAt) => { published.push({ minted: m, refreshAt }); },
    onFailure: (error) => failures.push(error),
  }, { now: () => NOW, random: () => 0.5 });
  return { refresh, published, failures };
}

test('RefreshScheduler publishes the first credentials and plans their refresh at half life', async (t) => {
  const { refresh, published } = scheduler([]);
  t.is(refresh.status(), undefined);
  await refresh.start(minted(HOUR_MS));
  t.teardown(() => refresh.close());
  t.deepEqual(refresh.status(), {
    state: 'scheduled',
    expiresAt: new Date(NOW + HOUR_MS),
    lastRefreshAt: new Date(NOW),
    nextRefreshAt: new Date(NOW + HOUR_MS / 2),
    consecutiveFailures: 0,
    lastError: undefined,
  });
  t.deepEqual(published.map((p) => p.refreshAt), [new Date(NOW + HOUR_MS / 2)]);
});

test('RefreshScheduler.refreshNow after a refusal retrying cannot fix: needs-attention, no refresh planned, the error thrown and reported', async (t) => {
  const denied = new CredfwdError('STS_ACCESS_DENIED', 'AccessDenied', 'grant sts:GetSessionToken');
  const { refresh, failures } = scheduler([denied]);
  await refresh.start(minted(HOUR_MS));
  t.teardown(() => refresh.close());
  await t.throwsAsync(refresh.refreshNow(), { code: 'STS_ACCESS_DENIED', message: 'AccessDenied' });
  t.like(refresh.status(), { state: 'needs-attention', nextRefreshAt: undefined, consecutiveFailures: 1, expiresAt: new Date(NOW + HOUR_MS) });
  t.like(refresh.status()?.lastError, { code: 'STS_ACCESS_DENIED', retryable: false, at: new Date(NOW) });
  t.is(failures.length, 1);
});

test('RefreshScheduler backs off after a retryable failure, and a refresh that works clears the failures', async (t) => {
  const throttled = new CredfwdError('STS_THROTTLED', 'Throttling', 'wait', { retryable: true });
  const { refresh, published } = scheduler([throttled, minted(2 * HOUR_MS)]);
  await refresh.start(minted(HOUR_MS));
  t.teardown(() => refresh.close());
  await t.throwsAsync(refresh.refreshNow(), { code: 'STS_THROTTLED' });
  // First backoff: random 0.5 of at most 1 s.
  t.like(refresh.status(), { state: 'backing-off', nextRefreshAt: new Date(NOW + 500), consecutiveFailures: 1 });
  await refresh.refreshNow();
  t.like(refresh.status(), { state: 'scheduled', consecutiveFailures: 0, lastError: undefined, expiresAt: new Date(NOW + 2 * HOUR_MS) });
  t.is(published.length, 2);
});

test('RefreshScheduler.refreshNow on a closed scheduler is CLUSTER_CLOSED', async (t) => {
  const { refresh } = scheduler([]);
  await refresh.start(minted(HOUR_MS));
  refresh.close();
  await t.throwsAsync(refresh.refreshNow(), { code: 'CLUSTER_CLOSED' });
});
