import type { Clock } from '../../src/clock.ts';

/** A clock running 10 minutes ahead of the host's, which a test moves on. */
export interface SkewedClock extends Clock {
  advance(ms: number): void;
}

/** Ten minutes of skew: an agent must reckon expiry on its own clock, whatever the coordinator's says. */
export function skewedClock(): SkewedClock {
  let offset = 10 * 60_000;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}
