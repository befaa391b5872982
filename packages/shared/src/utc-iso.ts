/** Years that `toISOString()` writes with four digits; others take a sign and six. */
const FOUR_DIGIT_YEARS = { min: 0, max: 9999 };

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/**
 * `date.toISOString()`, built from the date's UTC fields. V8's own sets up
 * ICU's time zone on its first call, even for UTC: about 0.9 MiB of an idle
 * agent's resident memory (bench/analysis.md, agent idle RSS), spent on a time
 * zone the agent never uses. Years outside 0 to 9999 and invalid dates go to
 * V8's, which writes or refuses them.
 */
export function utcIsoString(date: Date): string {
  const year = date.getUTCFullYear();
  if (!(year >= FOUR_DIGIT_YEARS.min && year <= FOUR_DIGIT_YEARS.max)) return date.toISOString();
  return `${pad(year, 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}.${pad(date.getUTCMilliseconds(), 3)}Z`;
}
