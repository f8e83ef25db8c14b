/**
 * Float64 running statistics of a tensor's values, chunk by chunk: finite count, min, max, shifted
 * sums for the mean and variance, and NaN / Inf / zero counts. Shared by the inspector's tensor
 * statistics (engine/handlers/tensorStats.ts) and the whole-checkpoint scan (scan.ts).
 */
export interface Moments {
  /** Finite values summed. */
  count: number;
  nanCount: number;
  infCount: number;
  zeroCount: number;
  min: number;
  max: number;
  /** Sums of (x - shift), float64, to keep the variance accurate when |mean| >> std. */
  shift: number;
  sum: number;
  sumSq: number;
}

export function emptyMoments(): Moments {
  return { count: 0, nanCount: 0, infCount: 0, zeroCount: 0, min: Infinity, max: -Infinity, shift: 0, sum: 0, sumSq: 0 };
}

export function addMoments(m: Moments, x: ArrayLike<number>): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v !== v) {
      m.nanCount++;
      continue;
    }
    if (v === Infinity || v === -Infinity) {
      m.infCount++;
      continue;
    }
    if (v === 0) m.zeroCount++;
    if (m.count === 0) m.shift = v;
    const d = v - m.shift;
    m.count++;
    m.sum += d;
    m.sumSq += d * d;
    if (v < m.min) m.min = v;
    if (v > m.max) m.max = v;
  }
}

/** Mean and (population) standard deviation of the finite values; NaN when there are none. */
export function meanAndStd(m: Moments): { mean: number; std: number } {
  if (m.count === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = m.shift + m.sum / m.count;
  return { mean, std: Math.sqrt(Math.max(0, m.sumSq / m.count - (m.sum / m.count) ** 2)) };
}
