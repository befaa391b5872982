import type { AdmissionLimits } from '@credfwd/coordinator';

/**
 * Admission limits of every coordinator and replica the fan-out benchmarks
 * start. The limits are for hostile floods; these benchmarks measure refresh
 * fan-out to agents that have joined, so a whole simulated fleet may join at
 * once rather than at the default 200 handshakes a second.
 * `tests/mass-reconnect.test.ts` covers joining under the defaults.
 */
export const BENCH_ADMISSION_LIMITS: Partial<AdmissionLimits> = { maxPendingHandshakes: 20_000, handshakesPerSecond: 1_000_000, handshakeBurst: 1_000_000 };
