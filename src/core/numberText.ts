/** Numbers as people read them in messages: a handful of significant digits, never 0.3333333333333333. */

/** Five significant digits (trailing zeros dropped); exponent form below 1e-3 and from 1e5. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(3) : x.toPrecision(5).replace(/\.?0+$/, '');
}

/** An interpolation weight in [0, 1] to two decimals: 0.33, 0.5, 0.96. */
export function formatLambda(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** A fraction as a percentage with one decimal: 0.9731 → "97.3%". */
export function formatPercent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
