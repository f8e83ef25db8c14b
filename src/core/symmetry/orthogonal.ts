/**
 * Orthogonal maps acting on the feature axes of weight tensors, in plain Float32Array math
 * (float64 accumulation), and random elements for tests and checks.
 *
 * One rule covers readers, writers, embeddings and biases: along a tensor's feature `axis`, every
 * slice is a vector in that feature space, and the map replaces it by v Q. A layer writing
 * features y = x W then writes y Q; a layer reading features x sees x Q and, given the same
 * replacement of its input-space vectors, computes what it did before (Q orthogonal: Q^-T = Q).
 * Matrices here are d x d row-major Float64Arrays. A tensor of rank > 2 is seen as 2-D: along
 * axis 0 its first axis against the rest (a conv's output channels), along axis 1 its last axis
 * after the rest (ViT's CLS token [1, 1, d] and position embeddings [1, P, d]).
 */
import type { DenseTensor } from '../checkpoint';
import { householderTo, matMul } from '../linalg';

/** Replaces each vector along `axis` of a tensor, restricted to [start, start + n), by v Q (Q n x n). */
export function rotateAxis(t: DenseTensor, axis: 0 | 1, start: number, q: Float64Array, n: number): DenseTensor {
  const [rows, cols] = dims(t, axis);
  const data = Float32Array.from(t.data);
  const v = new Float64Array(n);
  if (axis === 1 || t.shape.length === 1) {
    for (let r = 0; r < rows; r++) {
      const base = r * cols + start;
      for (let k = 0; k < n; k++) v[k] = t.data[base + k];
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += v[k] * q[k * n + j];
        data[base + j] = acc;
      }
    }
  } else {
    // Columns are the vectors: rows start..start+n become Q^T times them.
    const acc = new Float64Array(cols);
    for (let j = 0; j < n; j++) {
      acc.fill(0);
      for (let k = 0; k < n; k++) {
        const qkj = q[k * n + j];
        if (qkj === 0) continue;
        const src = (start + k) * cols;
        for (let c = 0; c < cols; c++) acc[c] += qkj * t.data[src + c];
      }
      const dst = (start + j) * cols;
      for (let c = 0; c < cols; c++) data[dst + c] = acc[c];
    }
  }
  return { shape: t.shape, data };
}

/** Reorders the features along `axis` in [start, start + perm.length): new feature j is old feature perm[j]. */
export function permuteAxis(t: DenseTensor, axis: 0 | 1, start: number, perm: ArrayLike<number>): DenseTensor {
  const [rows, cols] = dims(t, axis);
  const data = Float32Array.from(t.data);
  if (axis === 1 || t.shape.length === 1) {
    for (let r = 0; r < rows; r++) for (let j = 0; j < perm.length; j++) data[r * cols + start + j] = t.data[r * cols + start + perm[j]];
  } else {
    for (let j = 0; j < perm.length; j++) data.set(t.data.subarray((start + perm[j]) * cols, (start + perm[j] + 1) * cols), (start + j) * cols);
  }
  return { shape: t.shape, data };
}

/** Multiplies each vector along `axis` elementwise by `gain`. */
export function scaleAxis(t: DenseTensor, axis: 0 | 1, gain: Float32Array): DenseTensor {
  const [rows, cols] = dims(t, axis);
  const data = Float32Array.from(t.data);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = Math.fround(t.data[r * cols + c] * (axis === 1 || t.shape.length === 1 ? gain[c] : gain[r]));
  return { shape: t.shape, data };
}

/** The 2-D view [rows, cols] of a tensor along `axis` (see the module comment for rank > 2). */
function dims(t: DenseTensor, axis: 0 | 1): [number, number] {
  if (t.shape.length === 0) throw new RangeError('expected a tensor with at least one axis, got a scalar');
  if (t.shape.length === 1) return [1, t.shape[0]];
  const size = t.shape.reduce((a, b) => a * b, 1);
  return axis === 0 ? [t.shape[0], size / t.shape[0]] : [size / t.shape[t.shape.length - 1], t.shape[t.shape.length - 1]];
}

/** A standard normal sample (Box-Muller) from a uniform generator. */
export function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-300);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A Haar-random orthogonal n x n matrix: Gram-Schmidt (QR with a positive diagonal) of a Gaussian matrix. */
export function randomOrthogonal(n: number, random: () => number): Float64Array {
  const cols = Array.from({ length: n }, () => Float64Array.from({ length: n }, () => gaussian(random)));
  for (let j = 0; j < n; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += cols[k][i] * cols[j][i];
        for (let i = 0; i < n; i++) cols[j][i] -= d * cols[k][i];
      }
    }
    const len = Math.sqrt(cols[j].reduce((a, x) => a + x * x, 0));
    for (let i = 0; i < n; i++) cols[j][i] /= len;
  }
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) q[i * n + j] = cols[j][i];
  return q;
}

/** A random orthogonal n x n R with R u = u for the unit vector u: H diag(1, Q) H^T, H the Householder map e_1 -> u. */
export function randomOrthogonalFixing(unit: ArrayLike<number>, n: number, random: () => number): Float64Array {
  const h = householderTo(unit, n);
  const inner = randomOrthogonal(n - 1, random);
  const mid = new Float64Array(n * n);
  mid[0] = 1;
  for (let i = 1; i < n; i++) for (let j = 1; j < n; j++) mid[i * n + j] = inner[(i - 1) * (n - 1) + j - 1];
  return matMul(matMul(h, false, mid, false, n), false, h, true, n);
}

/**
 * A random orthogonal map of a rotary head (rotate-half layout: dimension e pairs with e + n/2)
 * that commutes with every rotary position: a 2 x 2 rotation in each frequency pair's plane.
 */
export function randomRotaryCommuting(n: number, random: () => number): Float64Array {
  const half = n / 2;
  const q = new Float64Array(n * n);
  for (let e = 0; e < half; e++) {
    const a = 2 * Math.PI * random();
    const [c, s] = [Math.cos(a), Math.sin(a)];
    q[e * n + e] = c;
    q[e * n + e + half] = s;
    q[(e + half) * n + e] = -s;
    q[(e + half) * n + e + half] = c;
  }
  return q;
}

/** True when the n x n Q only rotates within each rotary pair's plane (so commutes with rotary positions), to `tol`. */
export function commutesWithRotary(q: Float64Array, n: number, tol = 1e-6): boolean {
  const half = n / 2;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j !== i && j !== (i + half) % n && Math.abs(q[i * n + j]) > tol) return false;
    }
  }
  for (let e = 0; e < half; e++) {
    const [a, b, c, d] = [q[e * n + e], q[e * n + e + half], q[(e + half) * n + e], q[(e + half) * n + e + half]];
    if (Math.abs(a - d) > tol || Math.abs(b + c) > tol) return false;
  }
  return true;
}

/** Largest |Q^T Q - I| entry. */
export function orthogonalityError(q: Float64Array, n: number): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += q[k * n + i] * q[k * n + j];
      worst = Math.max(worst, Math.abs(acc - (i === j ? 1 : 0)));
    }
  }
  return worst;
}
