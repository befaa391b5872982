import { CredfwdError } from './errors.ts';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$|^(\d+)$/;

/** Parses `90`, `90s`, `15m`, `1h30m`, `1d` into whole seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const match = DURATION.exec(text.trim());
  if (!match || text.trim() === '') {
    throw new CredfwdError('USAGE', `${what} ${JSON.stringify(text)} is not a duration`, 'use forms like 900, 15m, 1h or 1h30m');
  }
  const [, d, h, m, s, bare] = match;
  return (Number(d ?? 0) * UNIT_SECONDS.d!) + (Number(h ?? 0) * UNIT_SECONDS.h!) + (Number(m ?? 0) * UNIT_SECONDS.m!) + Number(s ?? bare ?? 0);
}
