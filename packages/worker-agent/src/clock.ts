/** Where the agent reads the time; injected so expiry can be tested against a skewed clock. */
export interface Clock {
  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number;
}

/** The host's wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
