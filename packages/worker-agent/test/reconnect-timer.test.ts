import test from 'ava';
import { ReconnectTimer } from '../src/reconnect-timer.ts';

function delays(timer: ReconnectTimer, count: number): number[] {
  return Array.from({ length: count }, () => timer.start());
}

test('ReconnectTimer doubles from 250 ms to a 2 min cap', (t) => {
  const timer = new ReconnectTimer(() => t.fail('closed before it fired'), { random: () => 0.5 });
  t.deepEqual(delays(timer, 12), [250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000, 120000]);
  timer.close();
});

test('ReconnectTimer jitters each delay by at most 20 % either way', (t) => {
  const low = new ReconnectTimer(() => t.fail(), { random: () => 0 });
  const high = new ReconnectTimer(() => t.fail(), { random: () => 0.999999 });
  t.deepEqual(delays(low, 2), [200, 400]);
  t.deepEqual(delays(high, 2), [300, 600]);
  t.is(delays(low, 12).at(-1), 96000);
  low.close();
  high.close();
});

test('ReconnectTimer.reset starts the backoff over', (t) => {
  const timer = new ReconnectTimer(() => t.fail(), { random: () => 0.5 });
  delays(timer, 5);
  timer.reset();
  t.is(timer.start(), 250);
  timer.close();
});

test('ReconnectTimer calls back once the delay has passed, and not after close', async (t) => {
  let calls = 0;
  const fired = new Promise<void>((resolve) => {
    const timer = new ReconnectTimer(() => {
      calls += 1;
      resolve();
    }, { initialMs: 1 });
    timer.start();
  });
  await fired;
  t.is(calls, 1);
  const closed = new ReconnectTimer(() => t.fail('fired after close'), { initialMs: 1 });
  closed.start();
  closed.close();
  closed.close();
  t.is(closed.start(), 0);
  closed.close();
});
