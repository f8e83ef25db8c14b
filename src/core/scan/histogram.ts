/**
 * Histograms of tensor values, numpy-style: `bins` equal bins over [min, max], the last one closed
 * on the right, non-finite values left out. One rule for the inspector's tensor statistics and the
 * diff view's tensor pictures.
 */

/** Histogram edges: `bins` equal bins over [min, max] (a constant tensor gets [v - 0.5, v + 0.5]). */
export function histogramEdges(min: number, max: number, bins: number): number[] {
  const lo = min === max ? min - 0.5 : min;
  const hi = min === max ? max + 0.5 : max;
  return Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
}

/** Adds the finite values of `x` to `counts`, bins over [lo, hi]. */
export function addHistogram(counts: number[], lo: number, hi: number, x: Float32Array | Float64Array): void {
  const bins = counts.length;
  const scale = bins / (hi - lo);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) continue;
    // The last bin is closed on the right, like numpy.histogram.
    let k = Math.floor((v - lo) * scale);
    if (k >= bins) k = bins - 1;
    if (k < 0) k = 0;
    counts[k]++;
  }
}
