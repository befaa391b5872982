import test from 'ava';
import { CoordinatorLossWatch } from '../src/coordinator-loss-watch.ts';
import { skewedClock } from './helpers/skewed-clock.ts';

function watch(giveUpAfterMs: number, usableUntil: () => number | undefined) {
  const clock = skewedClock();
  let gaveUpAt: number | undefined;
  let gaveUp!: () => void;
  const givenUp = new Promise<void>((resolve) => { gaveUp = resolve; });
  const lossWatch = new CoordinatorLossWatch({
    clock,
    giveUpAfterMs,
    usableUntil,
    onGiveUp: () => {
      gaveUpAt = clock.now();
      gaveUp();
    },
  });
  return { clock, lossWatch, givenUp, gaveUpAt: () => gaveUpAt };
}

test('CoordinatorLossWatch gives up giveUpAfterMs after the loss when no credentials are usable', async (t) => {
  const { clock, lossWatch, givenUp, gaveUpAt } = watch(50, () => undefined);
  const lostAt = clock.now();
  lossWatch.lost();
  await givenUp;
  t.true((gaveUpAt() ?? 0) >= lostAt + 50);
});

test('CoordinatorLossWatch counts from the end of the usable credentials, on the agent clock', async (t) => {
  const clock = skewedClock();
  const usableUntil = clock.now() + 80;
  const { lossWatch, givenUp, gaveUpAt } = watch(40, () => (clock.now() < usableUntil ? usableUntil : undefined));
  lossWatch.lost();
  await givenUp;
  t.true((gaveUpAt() ?? 0) >= usableUntil + 40, 'never while credentials can still be served, nor before the grace after them');
});

test('CoordinatorLossWatch.found stops the count, and a later loss starts it afresh', async (t) => {
  const { clock, lossWatch, givenUp, gaveUpAt } = watch(60, () => undefined);
  lossWatch.lost();
  lossWatch.found();
  clock.advance(10_000);
  const lostAgainAt = clock.now();
  lossWatch.lost();
  await givenUp;
  t.true((gaveUpAt() ?? 0) >= lostAgainAt + 60, 'the first count did not carry over');
});

test('CoordinatorLossWatch.close is final', async (t) => {
  const { lossWatch, gaveUpAt } = watch(1, () => undefined);
  lossWatch.close();
  lossWatch.lost();
  t.is(gaveUpAt(), undefined);
  lossWatch.close();
});
