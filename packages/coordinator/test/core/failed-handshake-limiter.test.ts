import test from 'ava';
import { FailedHandshakeLimiter } from '../../src/core/failed-handshake-limiter.ts';

function limiter(maxAddresses = 100): { limiter: FailedHandshakeLimiter; advance(ms: number): void } {
  let now = 1_000_000;
  return {
    limiter: new FailedHandshakeLimiter({ maxFailures: 3, windowMs: 60_000, maxAddresses, now: () => now }),
    advance: (ms) => { now += ms; },
  };
}

test('FailedHandshakeLimiter blocks an address at its limit until the window ends, and says so once', (t) => {
  const { limiter: l, advance } = limiter();
  t.deepEqual([l.recordFailure('10.0.0.1'), l.recordFailure('10.0.0.1')], [false, false]);
  t.is(l.blockedForMs('10.0.0.1'), 0);
  t.true(l.recordFailure('10.0.0.1'), 'the failure that blocks');
  t.false(l.recordFailure('10.0.0.1'), 'later ones do not report again');
  advance(20_000);
  t.is(l.blockedForMs('10.0.0.1'), 40_000);
  t.is(l.blockedForMs('10.0.0.2'), 0, 'other addresses are not affected');
  advance(40_000);
  t.is(l.blockedForMs('10.0.0.1'), 0);
  t.false(l.recordFailure('10.0.0.1'), 'a new window starts from zero');
});

test('FailedHandshakeLimiter forgets the oldest address past its capacity', (t) => {
  const { limiter: l } = limiter(2);
  for (let i = 0; i < 3; i += 1) l.recordFailure('10.0.0.1');
  t.true(l.blockedForMs('10.0.0.1') > 0);
  l.recordFailure('10.0.0.2');
  l.recordFailure('10.0.0.3');
  t.is(l.blockedForMs('10.0.0.1'), 0, 'evicted, so memory stays bounded under a spread-out flood');
});
