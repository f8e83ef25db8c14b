/** Plain-text formatting for the CLI's human-readable output. */
import { safeText } from '../core/files';

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
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

/** The table's lines, for tables small enough to hold. */
export function tableLines(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const lines: string[] = [];
  writeTable(header, rows.length, (i) => rows[i], (chunk) => lines.push(...chunk.split('\n')));
  return lines;
}

/**
 * Writes a table row by row without holding it: one pass for the column widths, one to print,
 * in chunks of lines (a million rows are a million cells computed twice, not a million strings
 * kept, and a thousand writes rather than a million).
 */
export function writeTable(header: readonly string[], count: number, rowAt: (i: number) => readonly string[], write: (chunk: string) => void): void {
  const cell = (c: string | undefined): string => safeText(c ?? '', MAX_CELL);
  const widths = header.map((h) => h.length);
  // A loop, not Math.max(...rows): spreading a million rows overflows the call stack.
  for (let r = 0; r < count; r++) {
    const row = rowAt(r);
    for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], cell(row[i]).length);
  }
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const chunk: string[] = [line(header), line(widths.map((w) => '-'.repeat(w)))];
  for (let r = 0; r < count; r++) {
    const row = rowAt(r);
    chunk.push(line(header.map((_, i) => cell(row[i]))));
    if (chunk.length >= 1000) write(chunk.splice(0).join('\n'));
  }
  if (chunk.length) write(chunk.join('\n'));
}
