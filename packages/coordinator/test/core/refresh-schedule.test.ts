import test from 'ava';
import { MAX_BACKOFF_SECONDS, REFRESH_LEAD_SECONDS, backoffDelay, nextRefreshDelay } from '../../src/core/refresh-schedule.ts';

const middle = (): number => 0.5;
const lowest = (): number => 0;
const highest = (): number => 0.999_999;

test('nextRefreshDelay refreshes at half the remaining life', (t) => {
  t.is(nextRefreshDelay(3600, middle), 1800);
  t.is(nextRefreshDelay(900, middle), 450);
});

test('nextRefreshDelay jitters by ±10 %', (t) => {
  t.is(nextRefreshDelay(3600, lowest), 1620);
  t.true(Math.abs(nextRefreshDelay(3600, highest) - 1980) < 0.01);
});

test('nextRefreshDelay is never later than 5 minutes before expiry when life allows, jitter included', (t) => {
  t.is(nextRefreshDelay(500, middle), 500 - REFRESH_LEAD_SECONDS);
  for (const remaining of [301, 400, 599, 600, 601, 660, 7200]) {
    t.true(nextRefreshDelay(remaining, highest) <= remaining - REFRESH_LEAD_SECONDS, String(remaining));
  }
});

test('nextRefreshDelay falls back to half life for credentials with under 5 minutes left', (t) => {
  t.is(nextRefreshDelay(200, middle), 100);
  t.is(nextRefreshDelay(0.4, middle), 0.5);
});

test('nextRefreshDelay takes an override only when it is sooner', (t) => {
  t.is(nextRefreshDelay(3600, middle, 60), 60);
  t.is(nextRefreshDelay(900, middle, 100_000), 450);
});

test('backoffDelay grows from 1 s to the cap with full jitter', (t) => {
  t.is(backoffDelay(0, highest) <= 1, true);
  t.true(Math.abs(backoffDelay(3, highest) - 8) < 0.01);
  t.true(Math.abs(backoffDelay(20, highest) - MAX_BACKOFF_SECONDS) < 0.01);
  t.is(backoffDelay(5, lowest), 0.05, 'never zero, so a failing STS is not hammered in a tight loop');
});
