import test from 'ava';
import { HandshakeRateLimiter } from '../src/handshake-rate-limiter.ts';

test('HandshakeRateLimiter admits a burst, then the sustained rate', (t) => {
  let now = 0;
  const bucket = new HandshakeRateLimiter({ perSecond: 10, burst: 5, now: () => now });
  const take = (n: number): number => Array.from({ length: n }, () => bucket.tryTake()).filter(Boolean).length;
  t.is(take(8), 5);
  now += 1_000;
  t.is(take(20), 5, 'refilled to the burst, not beyond');
  now += 300;
  t.is(take(20), 3);
});
