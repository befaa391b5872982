import test from 'ava';
import { CoordinatorLossWatch } from '../src/coordinator-loss-watch.ts';
import { skewedClock } from './helpers/skewed-clock.ts';

function watch(giveUpAfterMs: number) {
  const clock = skewedClock();
  let gaveUpAt: number | undefined;
  let gaveUp!: () => void;
  const givenUp = new Promise<void>((resolve) => { gaveUp = resolve; });
  const lossWatch = new CoordinatorLossWatch({
    clock,
    giveUpAfterMs,
    onGiveUp: () => {
      gaveUpAt = clock.now();
      gaveUp();
    },
  });
  return { clock, lossWatch, givenUp, gaveUpAt: () => gaveUpAt };
}

test('CoordinatorLossWatch gives up giveUpAfterMs after the loss', async (t) => {
  const { clock, lossWatch, givenUp, gaveUpAt } = watch(50);
  const lostAt = clock.now();
  lossWatch.lost();
  await givenUp;
  t.true((gaveUpAt() ?? 0) >= lostAt + 50);
});

test('CoordinatorLossWatch counts from the loss of the coordinator, not from the end of credentials still held (issue 10: agents outlived their launcher by the credentials\' whole life)', async (t) => {
  // The agent's credentials would stay valid for 36 h: the watch is not even told about them.
  const { clock, lossWatch, givenUp, gaveUpAt } = watch(40);
  const lostAt = clock.now();
  lossWatch.lost();
  await givenUp;
  const gaveUp = gaveUpAt() ?? 0;
  t.true(gaveUp >= lostAt + 40, 'not before the grace');
  t.true(gaveUp < lostAt + 10_000, `within moments of the grace, not hours later (gave up ${gaveUp - lostAt} ms after the loss)`);
});

test('CoordinatorLossWatch.found stops the count, and a later loss starts it afresh', async (t) => {
  const { clock, lossWatch, givenUp, gaveUpAt } = watch(60);
  lossWatch.lost();
  lossWatch.found();
  clock.advance(10_000);
  const lostAgainAt = clock.now();
  lossWatch.lost();
  await givenUp;
  t.true((gaveUpAt() ?? 0) >= lostAgainAt + 60, 'the first count did not carry over');
});

test('CoordinatorLossWatch.close is final', async (t) => {
  const { lossWatch, gaveUpAt } = watch(1);
  lossWatch.close();
  lossWatch.lost();
  t.is(gaveUpAt(), undefined);
  lossWatch.close();
});
