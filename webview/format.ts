/**
 * Number and file-name formatting of the webviews, without the DOM (so Node unit tests of pure
 * webview code can use it); webview/dom.ts re-exports it.
 */

/** Compact number: 3 significant digits for small values, thousands separators for integers. */
export function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

/** A file-name-safe slug. */
export function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'export';
}
