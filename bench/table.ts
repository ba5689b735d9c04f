/**
 * Plain-text tables for the terminal: first column left-aligned, the rest
 * right-aligned (numbers line up), a rule under the header, section rows
 * (a single cell) printed as they are. No colours: the output is also pasted
 * into issues and compared with diff.
 */

export type Row = readonly string[];

export function renderTable(title: string, header: Row, rows: readonly Row[]): string {
  const all = [header, ...rows.filter((r) => r.length > 1)];
  const columns = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: Row) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const total = widths.reduce((a, b) => a + b, 0) + 2 * (columns - 1);
  const out = [title, line(header), '-'.repeat(total)];
  for (const r of rows) out.push(r.length === 1 ? `${r[0]}` : line(r));
  return out.join('\n');
}

/** A number for a table cell: fixed decimals, thousands separators, '-' for missing. */
export function fmt(value: number | undefined, decimals = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** a/b as "0.42x", '-' when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : fmt(bytes / 1048576, 1);
}
