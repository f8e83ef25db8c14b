/** Plain-text formatting for the CLI's human-readable output. */
import { safeText } from '../core/files';

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** Widest a table cell may be; longer text (a tensor name from a file) is cut with "...". */
export const MAX_CELL = 72;

/**
 * Left-aligned columns separated by two spaces. Cells are made safe for a terminal (control
 * and bidi characters escaped) and cut at MAX_CELL, so one long name cannot widen every row.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return tableLines(header, rows).join('\n');
}

/** The table's lines (for printing one at a time: a million rows need not become one string). */
export function tableLines(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const cell = (c: string | undefined): string => safeText(c ?? '', MAX_CELL);
  const widths = header.map((h) => h.length);
  const cut = rows.map((r) => header.map((_, i) => cell(r[i])));
  // A loop, not Math.max(...rows): spreading a million rows overflows the call stack.
  for (const r of cut) for (let i = 0; i < widths.length; i++) if (r[i].length > widths[i]) widths[i] = r[i].length;
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cut.map(line)];
}
