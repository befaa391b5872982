import test from 'ava';
import { utcIsoString } from '../src/utc-iso.ts';

/** The first and last instants that toISOString writes with a four-digit year. */
const YEAR_0 = Date.parse('0000-01-01T00:00:00.000Z');
const YEAR_9999_END = Date.parse('9999-12-31T23:59:59.999Z');

test('utcIsoString writes what toISOString writes, at the edges of each field', (t) => {
  const edges = [YEAR_0, -1, 0, 1, 999, 1000, Date.UTC(1969, 11, 31), Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2026, 11, 31, 23, 59, 59, 5), YEAR_9999_END];
  for (const ms of edges) t.is(utcIsoString(new Date(ms)), new Date(ms).toISOString(), `at ${ms}`);
});

test('utcIsoString writes what toISOString writes for instants spread from year 0 to 9999', (t) => {
  const steps = 20_000;
  const stride = Math.floor((YEAR_9999_END - YEAR_0) / steps);
  // An odd offset per step so that every field, milliseconds included, takes many values.
  for (let i = 0; i < steps; i++) {
    const ms = YEAR_0 + stride * i + ((i * 7919) % 1000);
    t.is(utcIsoString(new Date(ms)), new Date(ms).toISOString());
  }
});

test('utcIsoString leaves years beyond four digits and invalid dates to toISOString', (t) => {
  for (const iso of ['+010000-01-01T00:00:00.000Z', '-000001-12-31T23:59:59.999Z', '+275760-09-13T00:00:00.000Z']) {
    t.is(utcIsoString(new Date(iso)), iso);
  }
  t.throws(() => utcIsoString(new Date(Number.NaN)), { instanceOf: RangeError });
});
