/**
 * Applying permutations to tensors (gather convention of the paper's code, see `Permutations`
 * in checkpoint.ts): `aligned[t] = take(t, perm[p], axis)` on every axis that p acts on.
 */
import type { DenseTensor, PermSpec, Permutations, TensorMap } from '../checkpoint';
import { MatchingError } from './errors';
import { entryPermutation } from '../blockAxis';
import { mulberry32, shuffleInPlace } from './prng';
import type { HeldValues } from '../heldTensor';

/**
 * Gathers `data` (row-major, `shape`) along every axis that has a permutation, writing the
 * axes in the order `order` (a permutation of 0..rank-1): out[i_order...] = data[perm_d(i_d)...].
 * With the identity order this is a plain gather; with the axis first it also moves the axis
 * to the front, giving the [n, rest] block that cost-matrix products need. 16-bit values
 * (src/core/heldTensor.ts) are decoded as they are gathered.
 */
export function gatherAxes(
  values: HeldValues, shape: readonly number[], axisPerms: readonly (Int32Array | null)[], order: readonly number[], into?: Float32Array,
): Float32Array {
  const rank = shape.length;
  const size = shape.reduce((p, s) => p * s, 1);
  // `into`: a buffer to reuse (its first `size` values are overwritten), else a new array.
  const out = into ? into.subarray(0, size) : new Float32Array(size);
  if (size === 0) return out;
  const data = values instanceof Float32Array ? values : null;
  const half = values instanceof Float32Array ? null : values;
  // BF16: the pattern shifted into the top half is the float32 (no table lookup).
  const out32 = half?.bf16 ? new Uint32Array(out.buffer, out.byteOffset, out.length) : null;
  if (rank === 0) { out[0] = data ? data[0] : half!.table[half!.bits[0]]; return out; }
  const strides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
  // offsets[q][i] = source offset contributed by index i along output dim q.
  const offsets = order.map((d) => {
    const p = axisPerms[d];
    const o = new Int32Array(shape[d]);
    for (let i = 0; i < shape[d]; i++) o[i] = (p ? p[i] : i) * strides[d];
    return o;
  });
  const inner = offsets[rank - 1];
  const innerLen = inner.length;
  const contiguous = order[rank - 1] === rank - 1 && axisPerms[rank - 1] === null;
  const idx = new Int32Array(rank);
  let w = 0;
  for (;;) {
    let base = 0;
    for (let q = 0; q < rank - 1; q++) base += offsets[q][idx[q]];
    if (data) {
      if (contiguous) {
        out.set(data.subarray(base, base + innerLen), w);
        w += innerLen;
      } else {
        for (let i = 0; i < innerLen; i++) out[w++] = data[base + inner[i]];
      }
    } else if (out32) {
      const { bits } = half!;
      if (contiguous) {
        for (let i = 0; i < innerLen; i++) out32[w++] = bits[base + i] << 16;
      } else {
        for (let i = 0; i < innerLen; i++) out32[w++] = bits[base + inner[i]] << 16;
      }
    } else {
      const { bits, table } = half!;
      if (contiguous) {
        for (let i = 0; i < innerLen; i++) out[w++] = table[bits[base + i]];
      } else {
        for (let i = 0; i < innerLen; i++) out[w++] = table[bits[base + inner[i]]];
      }
    }
    let q = rank - 2;
    while (q >= 0) {
      if (++idx[q] < shape[order[q]]) break;
      idx[q] = 0;
      q--;
    }
    if (q < 0) break;
  }
  return out;
}

/**
 * <a, b gathered along `axisPerms`> (float64 sums) without materialising the gathered copy: the
 * objective is taken over every tensor of both models, and a copy per tensor would allocate a
 * whole model's worth of float32 at 1B parameters. 16-bit values are decoded one row at a time.
 */
export function permutedDot(a: HeldValues, b: HeldValues, shape: readonly number[], axisPerms: readonly (Int32Array | null)[]): number {
  const rank = shape.length;
  const plain = axisPerms.every((p) => p === null);
  if (a instanceof Float32Array && b instanceof Float32Array && (rank === 0 || plain)) return dotProduct(a, b);
  const at = (v: HeldValues, i: number): number => (v instanceof Float32Array ? v[i] : v.table[v.bits[i]]);
  if (rank === 0) return at(a, 0) * at(b, 0);
  const strides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
  if (s === 0) return 0;
  const offsets = shape.map((size, d) => {
    const p = axisPerms[d];
    const o = new Int32Array(size);
    for (let i = 0; i < size; i++) o[i] = (p ? p[i] : i) * strides[d];
    return o;
  });
  const inner = offsets[rank - 1];
  const innerLen = inner.length;
  const contiguous = axisPerms[rank - 1] === null;
  // Rows of a (always contiguous) and of b (gathered through `inner`), decoded when 16-bit.
  const rowA = a instanceof Float32Array ? null : new Float32Array(innerLen);
  const rowB = b instanceof Float32Array && contiguous ? null : new Float32Array(innerLen);
  const idx = new Int32Array(rank);
  let total = 0;
  let w = 0;
  for (;;) {
    let base = 0;
    for (let q = 0; q < rank - 1; q++) base += offsets[q][idx[q]];
    let ra: Float32Array;
    if (a instanceof Float32Array) ra = a.subarray(w, w + innerLen);
    else {
      for (let i = 0; i < innerLen; i++) rowA![i] = a.table[a.bits[w + i]];
      ra = rowA!;
    }
    let rb: Float32Array;
    if (!rowB) rb = (b as Float32Array).subarray(base, base + innerLen);
    else if (b instanceof Float32Array) {
      for (let i = 0; i < innerLen; i++) rowB[i] = b[base + inner[i]];
      rb = rowB;
    } else {
      for (let i = 0; i < innerLen; i++) rowB[i] = b.table[b.bits[base + inner[i]]];
      rb = rowB;
    }
    total += dotProduct(ra, rb);
    w += innerLen;
    let q = rank - 2;
    while (q >= 0) {
      if (++idx[q] < shape[q]) break;
      idx[q] = 0;
      q--;
    }
    if (q < 0) break;
  }
  return total;
}

/** Gathers `t` along each axis with a non-null permutation. */
export function permuteTensor(t: DenseTensor, axisPerms: readonly (Int32Array | null)[]): DenseTensor {
  if (axisPerms.length !== t.shape.length) {
    throw new MatchingError('BadSpec', `permute: ${axisPerms.length} axis permutations for a tensor of rank ${t.shape.length}`);
  }
  axisPerms.forEach((p, d) => {
    if (p && p.length !== t.shape[d]) {
      throw new MatchingError('ShapeMismatch', `permute: permutation of length ${p.length} on axis ${d} of size ${t.shape[d]}`);
    }
  });
  if (axisPerms.every((p) => p === null)) return { shape: t.shape, data: t.data.slice() };
  const order = t.shape.map((_, d) => d);
  return { shape: t.shape, data: gatherAxes(t.data, t.shape, axisPerms, order) };
}

/** The permutation arrays acting on each axis of tensor `name` (null where none acts). */
export function axisPermsOf(spec: PermSpec, perms: Permutations, name: string): (Int32Array | null)[] {
  const missing = (p: string): never => {
    throw new MatchingError('BadSpec', `permutation \`${p}\` of tensor \`${name}\` has no value`, name);
  };
  return spec.axes[name].map((entry) => entryPermutation(entry, perms, missing));
}

/** pi(tensors): every tensor the spec names is permuted; tensors not in the spec are passed through. */
export function applyPermutations(spec: PermSpec, perms: Permutations, tensors: TensorMap): Map<string, DenseTensor> {
  const out = new Map<string, DenseTensor>();
  for (const [name, t] of tensors) {
    out.set(name, spec.axes[name] ? permuteTensor(t, axisPermsOf(spec, perms, name)) : t);
  }
  return out;
}

/** Checks that `p` is a permutation of 0..n-1. */
export function checkPermutation(p: Int32Array, n: number, what: string): void {
  if (p.length !== n) throw new MatchingError('BadPermutation', `${what}: length ${p.length}, expected ${n}`);
  const seen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = p[i];
    if (j < 0 || j >= n || seen[j]) throw new MatchingError('BadPermutation', `${what}: not a permutation (entry ${i} is ${j})`);
    seen[j] = 1;
  }
}

/** q with q[p[i]] = i: gathering with q undoes gathering with p. */
export function invertPermutation(p: Int32Array): Int32Array {
  const q = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) q[p[i]] = i;
  return q;
}

/**
 * r[i] = first[second[i]]: gathering with r equals gathering with `first`, then with `second`.
 */
export function composePermutations(first: Int32Array, second: Int32Array): Int32Array {
  if (first.length !== second.length) {
    throw new MatchingError('BadPermutation', `compose: lengths ${first.length} and ${second.length} differ`);
  }
  const r = new Int32Array(first.length);
  for (let i = 0; i < r.length; i++) r[i] = first[second[i]];
  return r;
}

export function identityPermutation(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

export function identityPermutations(spec: PermSpec): Record<string, Int32Array> {
  const out: Record<string, Int32Array> = {};
  for (const [name, n] of Object.entries(spec.perms)) out[name] = identityPermutation(n);
  return out;
}

/**
 * Uniformly random permutations, deterministic for a seed (permutations drawn in sorted name
 * order); a per-block permutation (`spec.blocks`) is shuffled inside each of its blocks.
 */
export function randomPermutations(spec: PermSpec, seed: number): Record<string, Int32Array> {
  const random = mulberry32(seed);
  const out: Record<string, Int32Array> = {};
  for (const name of Object.keys(spec.perms).sort()) {
    const p = identityPermutation(spec.perms[name]);
    const blocks = spec.blocks?.[name] ?? 1;
    const size = p.length / blocks;
    for (let g = 0; g < blocks; g++) shuffleInPlace(p.subarray(g * size, (g + 1) * size), random);
    out[name] = p;
  }
  return out;
}

/** Float64 inner product of two equally long arrays. */
export function dotProduct(a: Float32Array, b: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length;
  const n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
  }
  for (let i = n4; i < n; i++) s0 += a[i] * b[i];
  return s0 + s1 + s2 + s3;
}

/** Sum over the spec's tensors of <A_t, B_t> (float64): weight matching's objective for an already aligned B. */
export function objective(spec: PermSpec, a: TensorMap, b: TensorMap): number {
  let sum = 0;
  for (const name of Object.keys(spec.axes)) {
    const ta = a.get(name);
    const tb = b.get(name);
    if (!ta || !tb) throw new MatchingError('MissingTensor', `objective: tensor \`${name}\` is missing from a model`, name);
    if (ta.data.length !== tb.data.length) {
      throw new MatchingError('ShapeMismatch', `objective: tensor \`${name}\` has ${ta.data.length} values in A and ${tb.data.length} in B`, name);
    }
    sum += dotProduct(ta.data, tb.data);
  }
  return sum;
}

/** Like `axisPermsOf`, for any tensor of the checkpoint: all null when the spec does not name it or a permutation has no value. */
export function axisPermutations(spec: PermSpec, perms: Permutations, tensor: string, rank: number): (Int32Array | null)[] {
  const axes = spec.axes[tensor];
  if (!axes) return new Array<Int32Array | null>(rank).fill(null);
  return axes.map((p) => {
    try {
      return entryPermutation(p, perms, (name) => { throw new Error(name); });
    } catch {
      return null; // a permutation not in `perms` leaves its axis as it is
    }
  });
}

/** For each element of the permuted tensor, the index of its source element (row-major). */
export function gatherIndex(shape: readonly number[], axisPerms: readonly (Int32Array | null)[]): Uint32Array {
  const rank = shape.length;
  const count = shape.reduce((p, d) => p * d, 1);
  const index = new Uint32Array(count);
  if (rank === 0 || count === 0) return index;
  const strides: number[] = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  let w = 0;
  const walk = (axis: number, from: number): void => {
    const p = axisPerms[axis];
    const n = shape[axis];
    if (axis === rank - 1) {
      for (let i = 0; i < n; i++) index[w++] = from + (p ? p[i] : i);
      return;
    }
    for (let i = 0; i < n; i++) walk(axis + 1, from + (p ? p[i] : i) * strides[axis]);
  };
  walk(0, 0);
  return index;
}

/**
 * Permutes a tensor's raw little-endian bytes along the given axes without decoding, for any
 * dtype whose elements are whole bytes (1, 2, 4 or 8); null for sub-byte dtypes (F4, F6).
 */
export function permuteBytes(bytes: Uint8Array, shape: readonly number[], axisPerms: readonly (Int32Array | null)[]): Uint8Array | null {
  if (axisPerms.every((p) => p === null)) return bytes;
  const count = shape.reduce((p, d) => p * d, 1);
  const width = count === 0 ? 0 : bytes.length / count;
  const src = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const out = new Uint8Array(bytes.length);
  if (count === 0) return out;
  const index = gatherIndex(shape, axisPerms);
  switch (width) {
    case 1:
      for (let i = 0; i < count; i++) out[i] = src[index[i]];
      break;
    case 2: {
      const from = new Uint16Array(src.buffer, src.byteOffset, count);
      const to = new Uint16Array(out.buffer);
      for (let i = 0; i < count; i++) to[i] = from[index[i]];
      break;
    }
    case 4: {
      const from = new Uint32Array(src.buffer, src.byteOffset, count);
      const to = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) to[i] = from[index[i]];
      break;
    }
    case 8: {
      // Two 32-bit halves per element: avoids BigInt traffic.
      const from = new Uint32Array(src.buffer, src.byteOffset, count * 2);
      const to = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) {
        to[2 * i] = from[2 * index[i]];
        to[2 * i + 1] = from[2 * index[i] + 1];
      }
      break;
    }
    default:
      return null;
  }
  return out;
}
