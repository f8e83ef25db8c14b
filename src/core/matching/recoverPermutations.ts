/**
 * Recovers the permutations π of a spec from B and a file claimed to be π(B), so that the claim
 * can be verified bit for bit (`barrier --aligned`). Pure code over raw tensor bytes, one tensor
 * at a time:
 * - every unit of a permutation gets a signature, from each tensor axis it acts on: the
 *   order-free hash of the slice at that unit (all elements with that index on the axis). A
 *   permutation of the other axes moves values inside the slice, never in or out of it, so a
 *   unit's signature in π(B) equals the signature of its source unit in B;
 * - block axes (attention heads): a block's signature sums its positions' slice hashes (free of
 *   the inner permutations); an inner unit (block g, index j of its level) sums the positions of
 *   block g with that index;
 * - units are paired by equal signatures (outer permutations first; an inner permutation pairs
 *   the units of block g of the file with those of B's block outer[g]). Equal signatures pair in
 *   index order: such units are copies of each other as far as the hashes can tell.
 * For a true π(B) the result is π (up to exact duplicates, which give the same tensors); for any
 * other file it is some permutation, and the caller's bit-for-bit check refuses the file.
 */
import type { AxisEntry, PermSpec } from '../checkpoint';
import { isBlockAxis, levelStrides, partSize } from '../blockAxis';

/** A 32-bit mix of a 32-bit word (murmur3's finaliser with a seed). */
export function mix(x: number, seed: number): number {
  let h = (x ^ seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const SEED1 = 0x1b873593;
const SEED2 = 0xcc9e2d51;

/** The 32-bit word of the element at byte offset `o` (8-byte elements: their words folded in order). */
function elementWord(view: DataView, o: number, size: number): number {
  if (size === 1) return view.getUint8(o);
  if (size === 2) return view.getUint16(o, true);
  if (size === 4) return view.getUint32(o, true);
  let word = 0x9e3779b9;
  for (let k = 0; k + 4 <= size; k += 4) word = mix(word ^ view.getUint32(o + k, true), k + 1);
  return word;
}

/** Order-free hash of the elements of `raw` (`size` bytes each): sums of two mixes of each element, mod 2^32. */
export function multisetHash(raw: Uint8Array, size: number): [number, number] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let s1 = 0;
  let s2 = 0;
  for (let o = 0; o + size <= raw.byteLength; o += size) {
    const word = elementWord(view, o, size);
    s1 = (s1 + mix(word, SEED1)) >>> 0;
    s2 = (s2 + mix(word, SEED2)) >>> 0;
  }
  return [s1, s2];
}

/** Two hashes per index of an axis. */
interface AxisHashes {
  readonly h1: Uint32Array;
  readonly h2: Uint32Array;
}

/** The element words of `raw`: a typed view for 1, 2 and 4 bytes when aligned, else decoded one by one. */
function elementWords(raw: Uint8Array, size: number, count: number): ArrayLike<number> {
  if (size === 1) return raw;
  if (size === 2 && raw.byteOffset % 2 === 0) return new Uint16Array(raw.buffer, raw.byteOffset, count);
  if (size === 4 && raw.byteOffset % 4 === 0) return new Uint32Array(raw.buffer, raw.byteOffset, count);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Uint32Array(count);
  for (let e = 0; e < count; e++) out[e] = elementWord(view, e * size, size);
  return out;
}

/** For each axis in `axes`, the order-free hash of each slice along it (one pass over the elements). */
export function sliceHashes(raw: Uint8Array, size: number, shape: readonly number[], axes: readonly number[]): Map<number, AxisHashes> {
  const out = new Map<number, AxisHashes>();
  for (const d of axes) out.set(d, { h1: new Uint32Array(shape[d]), h2: new Uint32Array(shape[d]) });
  const count = shape.reduce((p, n) => p * n, 1);
  if (count === 0 || axes.length === 0) return out;
  const words = elementWords(raw, size, count);
  // Element e's index on axis d is floor(e / inner_d) mod shape[d], inner_d the product of the later axes.
  for (const d of axes) {
    const { h1, h2 } = out.get(d)!;
    const inner = shape.slice(d + 1).reduce((p, n) => p * n, 1);
    const n = shape[d];
    let e = 0;
    while (e < count) {
      for (let i = 0; i < n; i++) {
        let s1 = h1[i];
        let s2 = h2[i];
        for (let k = 0; k < inner; k++, e++) {
          const w = words[e];
          s1 = (s1 + mix(w, SEED1)) >>> 0;
          s2 = (s2 + mix(w, SEED2)) >>> 0;
        }
        h1[i] = s1;
        h2[i] = s2;
      }
    }
  }
  return out;
}

/** Two hashes per unit of one permutation, in B and in the file. */
interface Signature {
  readonly b1: Uint32Array;
  readonly b2: Uint32Array;
  readonly f1: Uint32Array;
  readonly f2: Uint32Array;
}

function signature(n: number): Signature {
  return { b1: new Uint32Array(n), b2: new Uint32Array(n), f1: new Uint32Array(n), f2: new Uint32Array(n) };
}

/** Signatures of the units of every permutation, for B and for the file: one per tensor axis it acts on. */
export class UnitSignatures {
  private readonly sig = new Map<string, Signature[]>();
  /** Inner permutation -> the outer permutation of the blocks it lives in. */
  private readonly outerOf = new Map<string, string>();

  constructor(private readonly spec: PermSpec) {}

  /** The axes of a tensor that some permutation acts on. */
  static permutedAxes(entries: readonly AxisEntry[]): number[] {
    return entries.flatMap((e, d) => (e === null ? [] : [d]));
  }

  /** Adds one tensor: its spec entries and the slice hashes of B's and the file's copy on each permuted axis. */
  add(entries: readonly AxisEntry[], b: Map<number, AxisHashes>, f: Map<number, AxisHashes>): void {
    entries.forEach((entry, d) => {
      if (entry === null) return;
      const hb = b.get(d)!;
      const hf = f.get(d)!;
      // This axis's signature of each permutation it holds.
      const mine = new Map<string, Signature>();
      const put = (name: string, unit: number, i: number): void => {
        let s = mine.get(name);
        if (!s) {
          s = signature(this.spec.perms[name]);
          mine.set(name, s);
          this.sig.set(name, [...(this.sig.get(name) ?? []), s]);
        }
        s.b1[unit] = (s.b1[unit] + mix(hb.h1[i], SEED1)) >>> 0;
        s.b2[unit] = (s.b2[unit] + mix(hb.h2[i], SEED2)) >>> 0;
        s.f1[unit] = (s.f1[unit] + mix(hf.h1[i], SEED1)) >>> 0;
        s.f2[unit] = (s.f2[unit] + mix(hf.h2[i], SEED2)) >>> 0;
      };
      if (!isBlockAxis(entry)) {
        for (let i = 0; i < hb.h1.length; i++) put(entry, i, i);
        return;
      }
      let offset = 0;
      for (const part of entry.parts) {
        const strides = levelStrides(part.split);
        const size = partSize(part);
        const outer = part.perms[0];
        for (let x = 0; x < size; x++) {
          const g = Math.floor(x / strides[0]);
          if (outer !== null) put(outer, g, offset + x);
          for (let l = 1; l < part.split.length; l++) {
            const inner = part.perms[l];
            if (inner === null) continue;
            const j = Math.floor(x / strides[l]) % part.split[l];
            put(inner, g * part.split[l] + j, offset + x);
            if (outer !== null && !this.outerOf.has(inner)) this.outerOf.set(inner, outer);
          }
        }
        offset += size;
      }
    });
  }

  /** The permutations pairing the file's units with B's (gather convention: file[x] = B[p[x]]). */
  recover(): Record<string, Int32Array> {
    const perms: Record<string, Int32Array> = {};
    const names = Object.keys(this.spec.perms).sort();
    const blocks = (n: string): number => this.spec.blocks?.[n] ?? 1;
    for (const name of names.filter((n) => blocks(n) === 1)) perms[name] = this.pairBest(name, 1, () => 0);
    for (const name of names.filter((n) => blocks(n) > 1)) {
      const outer = this.outerOf.get(name);
      const o = outer !== undefined ? perms[outer] : undefined;
      perms[name] = this.pairBest(name, blocks(name), (g) => (o ? o[g] : g));
    }
    return perms;
  }

  /**
   * Pairs by all of a permutation's signatures together; when they do not pair exactly (the file
   * is not π(B)), by the first axis whose signatures do, so that the tensors that differ are the
   * ones the caller's check names, not every tensor sharing the permutation.
   */
  private pairBest(name: string, blocks: number, source: (g: number) => number): Int32Array {
    const n = this.spec.perms[name];
    const usages = this.sig.get(name) ?? [];
    if (usages.length === 0) return Int32Array.from({ length: n }, (_, i) => i);
    const all = signature(n);
    for (const s of usages) {
      for (let i = 0; i < n; i++) {
        all.b1[i] = (all.b1[i] + mix(s.b1[i], 0x27d4eb2f)) >>> 0;
        all.b2[i] = (all.b2[i] + mix(s.b2[i], 0x27d4eb2f)) >>> 0;
        all.f1[i] = (all.f1[i] + mix(s.f1[i], 0x27d4eb2f)) >>> 0;
        all.f2[i] = (all.f2[i] + mix(s.f2[i], 0x27d4eb2f)) >>> 0;
      }
    }
    const first = pair(all, n, blocks, source);
    if (first.exact) return first.p;
    for (const s of usages) {
      const one = pair(s, n, blocks, source);
      if (one.exact) return one.p;
    }
    return first.p;
  }
}

/**
 * Pairs, within each block g, the file's units of block g with B's units of block `source(g)`
 * in the order of their signatures; exact when every pair has equal signatures.
 */
function pair(s: Signature, n: number, blocks: number, source: (g: number) => number): { p: Int32Array; exact: boolean } {
  const size = n / blocks;
  const p = new Int32Array(n);
  let exact = true;
  for (let g = 0; g < blocks; g++) {
    const local = Array.from({ length: size }, (_, i) => i);
    const src = source(g) * size;
    const own = g * size;
    const byB = [...local].sort((i, j) => s.b1[src + i] - s.b1[src + j] || s.b2[src + i] - s.b2[src + j] || i - j);
    const byF = [...local].sort((i, j) => s.f1[own + i] - s.f1[own + j] || s.f2[own + i] - s.f2[own + j] || i - j);
    for (let k = 0; k < size; k++) {
      p[own + byF[k]] = own + byB[k];
      if (s.f1[own + byF[k]] !== s.b1[src + byB[k]] || s.f2[own + byF[k]] !== s.b2[src + byB[k]]) exact = false;
    }
  }
  return { p, exact };
}
