/** A GitHub-flavoured Markdown table; cells must not contain `|`. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A number with `digits` decimals, or "n/a" when it is not a number. */
export function num(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "met" / "**missed**" for a target, or "—" when there is none. */
export function verdict(met: boolean | undefined): string {
  return met === undefined ? '—' : met ? 'met' : '**missed**';
}
