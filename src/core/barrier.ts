/**
 * Loss-barrier arithmetic (Git Re-Basin, section 2 / eq. 1, after Frankle et al. 2020): the
 * barrier of a path is the largest amount by which the loss along the linear interpolation
 * rises above the straight line between its two endpoint losses.
 */

/** `steps` evenly spaced lambdas from 0 to 1 inclusive (25 in the paper). */
/**
 * Most points on a loss curve: a λ step of 0.001, far finer than any barrier needs. Each point
 * is a forward pass over the data per path, and the grid and its results are held whole.
 */
export const MAX_STEPS = 1001;

export function lambdaGrid(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 2) throw new RangeError(`lambda grid: steps must be an integer >= 2, got ${steps}`);
  return Array.from({ length: steps }, (_, i) => (i === steps - 1 ? 1 : i / (steps - 1)));
}

/**
 * The indices 0..n-1 coarse to fine: both ends, then the middle, then the quarters, and so on
 * (breadth first over halved intervals). A curve evaluated in this order spans the whole path
 * from its first points, so its barrier so far (against the true endpoints) is a lower bound of
 * the final one and its shape fills in evenly, where left to right it would grow from λ = 0.
 */
export function coarseToFine(n: number): number[] {
  if (n <= 0) return [];
  if (n === 1) return [0];
  const out = [0, n - 1];
  const intervals: [number, number][] = [[0, n - 1]];
  for (let k = 0; k < intervals.length; k++) {
    const [lo, hi] = intervals[k];
    if (hi - lo < 2) continue;
    const mid = Math.floor((lo + hi) / 2);
    out.push(mid);
    intervals.push([lo, mid], [mid, hi]);
  }
  return out;
}

/**
 * max over λ of L(λ) − ((1−t)·L(first) + t·L(last)), with t the position of λ between the first
 * and last lambda (t = λ for a 0..1 grid). Lambdas need not be sorted. The endpoints contribute 0,
 * so a convex curve has barrier 0; NaN losses give NaN (a diverged model has no barrier).
 */
export function barrierFromCurve(lambdas: readonly number[], losses: readonly number[]): number {
  if (lambdas.length !== losses.length) throw new RangeError(`barrier: ${lambdas.length} lambdas but ${losses.length} losses`);
  if (lambdas.length < 2) throw new RangeError('barrier: needs at least two points');
  const order = lambdas.map((_, i) => i).sort((i, j) => lambdas[i] - lambdas[j]);
  const lo = order[0];
  const hi = order[order.length - 1];
  const span = lambdas[hi] - lambdas[lo];
  if (!(span > 0)) throw new RangeError('barrier: lambdas must span a non-empty interval');
  let barrier = 0;
  for (const i of order) {
    const t = (lambdas[i] - lambdas[lo]) / span;
    const line = (1 - t) * losses[lo] + t * losses[hi];
    const rise = losses[i] - line;
    if (Number.isNaN(rise)) return Number.NaN;
    if (rise > barrier) barrier = rise;
  }
  return barrier;
}
