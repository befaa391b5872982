import test from 'ava';
import { TokenBucket } from '../src/token-bucket.ts';

function manualClock(): { now: () => number; advance(ms: number): void } {
  let ms = 0;
  return { now: () => ms, advance: (by) => { ms += by; } };
}

function takeAll(bucket: TokenBucket, tries: number): number {
  let taken = 0;
  for (let i = 0; i < tries; i++) if (bucket.take()) taken++;
  return taken;
}

test('TokenBucket allows a burst, then refuses until time refills it', (t) => {
  const clock = manualClock();
  const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, now: clock.now });
  t.is(takeAll(bucket, 100), 5);
  clock.advance(100);
  t.is(takeAll(bucket, 100), 1, 'one token per 100 ms at 10/s');
  clock.advance(60_000);
  t.is(takeAll(bucket, 100), 5, 'never more than the burst, however long the pause');
});

test('TokenBucket refuses a rate it cannot honour', (t) => {
  t.throws(() => new TokenBucket({ ratePerSecond: 0, burst: 5 }), { instanceOf: RangeError });
  t.throws(() => new TokenBucket({ ratePerSecond: 5, burst: 0 }), { instanceOf: RangeError });
});
