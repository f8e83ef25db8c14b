/**
 * Float64 sums over pairs of values (A's and B's elements at the same index), from which every
 * diff figure follows: ||A−B||, ||A−B|| / ||A||, cosine(A, B), max |A−B|. Sums of tensors add up
 * to a layer's or the whole checkpoint's, so totals are exactly consistent with the tensors.
 * A pair where either value is NaN or ±Inf is counted in `nonFinite` and left out of the sums.
 */

export interface PairSums {
  /** Finite pairs summed. */
  count: number;
  nonFinite: number;
  sumSqA: number;
  sumSqB: number;
  dot: number;
  sumSqDiff: number;
  maxAbs: number;
}

export function emptySums(): PairSums {
  return { count: 0, nonFinite: 0, sumSqA: 0, sumSqB: 0, dot: 0, sumSqDiff: 0, maxAbs: 0 };
}

/** Adds the pairs (a[i], b[i]); both chunks hold the same elements of their tensors. */
export function addPairs(s: PairSums, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`chunks of ${a.length} and ${b.length} values cannot be paired`);
  let sumSqA = 0;
  let sumSqB = 0;
  let dot = 0;
  let sumSqDiff = 0;
  let maxAbs = s.maxAbs;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    const d = x - y;
    // x - y is finite exactly when both are (and their difference does not overflow float64).
    if (!Number.isFinite(d)) {
      s.nonFinite++;
      continue;
    }
    count++;
    sumSqA += x * x;
    sumSqB += y * y;
    dot += x * y;
    sumSqDiff += d * d;
    const ad = Math.abs(d);
    if (ad > maxAbs) maxAbs = ad;
  }
  s.count += count;
  s.sumSqA += sumSqA;
  s.sumSqB += sumSqB;
  s.dot += dot;
  s.sumSqDiff += sumSqDiff;
  s.maxAbs = maxAbs;
}

export function addSums(into: PairSums, s: PairSums): void {
  into.count += s.count;
  into.nonFinite += s.nonFinite;
  into.sumSqA += s.sumSqA;
  into.sumSqB += s.sumSqB;
  into.dot += s.dot;
  into.sumSqDiff += s.sumSqDiff;
  into.maxAbs = Math.max(into.maxAbs, s.maxAbs);
}

export interface DiffFigures {
  /** ||A − B|| over the finite pairs. */
  readonly l2: number;
  /** ||A − B|| / ||A||; 0 when both are 0, null when only ||A|| is. */
  readonly relative: number | null;
  /** <A, B> / (||A|| ||B||); null when either norm is 0. */
  readonly cosine: number | null;
  /** max |A − B| over the finite pairs. */
  readonly maxAbs: number;
  /** Pairs where A or B is NaN or ±Inf (left out of the figures above). */
  readonly nonFinite: number;
}

export function figuresOf(s: PairSums): DiffFigures {
  const l2 = Math.sqrt(s.sumSqDiff);
  const normA = Math.sqrt(s.sumSqA);
  const normB = Math.sqrt(s.sumSqB);
  return {
    l2,
    relative: normA > 0 ? l2 / normA : l2 === 0 ? 0 : null,
    // Rounding can push |cos| a hair past 1 for identical tensors.
    cosine: normA > 0 && normB > 0 ? Math.max(-1, Math.min(1, s.dot / (normA * normB))) : null,
    maxAbs: s.maxAbs,
    nonFinite: s.nonFinite,
  };
}
