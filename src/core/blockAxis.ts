/**
 * Block axes: permutations that act on an axis in blocks (attention heads), with optional
 * permutations of the positions inside each block. The spec entry (checkpoint.ts `BlockAxis`)
 * views the axis as nested levels, e.g. [heads, head_dim]; the outer permutation moves whole
 * blocks, an inner one permutes a level's index separately inside each outer block.
 *
 * Gather convention (as for whole-axis permutations): for position (g, i1, i2, ...) of the
 * permuted axis, the source position in B is
 *   (outer[g], inner1_g(i1), inner2_g(i2), ...)
 * where inner_l_g is the block-g permutation of level l: block g of A's order (so that for a
 * matched pair of heads, A's head g and B's head outer[g], inner_g says how their dimensions
 * pair up). A per-block permutation's value is one flat Int32Array of blocks x size entries,
 * block g holding g*size + inner_g(i): a permutation of the whole range that keeps each block.
 */
import type { AxisEntry, BlockAxis, BlockPart, Permutations } from './checkpoint';

export function isBlockAxis(entry: AxisEntry | undefined): entry is BlockAxis {
  return typeof entry === 'object' && entry !== null;
}

export function partSize(part: BlockPart): number {
  return part.split.reduce((p, s) => p * s, 1);
}

export function blockAxisSize(axis: BlockAxis): number {
  return axis.parts.reduce((s, p) => s + partSize(p), 0);
}

/** Every permutation an axis entry names (a block axis: each part's levels, in order). */
export function entryPermNames(entry: AxisEntry): string[] {
  if (entry === null) return [];
  if (typeof entry === 'string') return [entry];
  const out: string[] = [];
  for (const part of entry.parts) for (const p of part.perms) if (p !== null && !out.includes(p)) out.push(p);
  return out;
}

/** True when the entry is, or contains, permutation `name`. */
export function entryUses(entry: AxisEntry, name: string): boolean {
  return entry === name || (isBlockAxis(entry) && entry.parts.some((part) => part.perms.includes(name)));
}

/** Row-major strides of the levels of a part. */
export function levelStrides(split: readonly number[]): number[] {
  const strides = new Array<number>(split.length);
  let s = 1;
  for (let l = split.length - 1; l >= 0; l--) { strides[l] = s; s *= split[l]; }
  return strides;
}

/**
 * Source index (within the part) of each position of a part, given each level's permutation
 * (`levelPerms[0]` of length split[0], inner ones flat per block: split[0] x split[l]).
 */
export function expandPart(split: readonly number[], levelPerms: readonly (Int32Array | null)[]): Int32Array {
  const size = split.reduce((p, s) => p * s, 1);
  const out = new Int32Array(size);
  const strides = levelStrides(split);
  const k = split.length;
  const digits = new Int32Array(k);
  for (let x = 0; x < size; x++) {
    const g = digits[0];
    const outer = levelPerms[0];
    let src = (outer ? outer[g] : g) * strides[0];
    for (let l = 1; l < k; l++) {
      const p = levelPerms[l];
      const n = split[l];
      src += (p ? p[g * n + digits[l]] - g * n : digits[l]) * strides[l];
    }
    out[x] = src;
    for (let l = k - 1; l >= 0; l--) {
      if (++digits[l] < split[l]) break;
      digits[l] = 0;
    }
  }
  return out;
}

/** Gather indices of a whole block axis under `perms` (`missing` names an absent permutation). */
export function expandBlockAxis(axis: BlockAxis, perms: Permutations, missing: (name: string) => never): Int32Array {
  const out = new Int32Array(blockAxisSize(axis));
  let offset = 0;
  for (const part of axis.parts) {
    const levelPerms = part.perms.map((p) => (p === null ? null : perms[p] ?? missing(p)));
    const local = expandPart(part.split, levelPerms);
    for (let i = 0; i < local.length; i++) out[offset + i] = offset + local[i];
    offset += local.length;
  }
  return out;
}

/** The gather indices one axis entry gives (null: not permuted). */
export function entryPermutation(entry: AxisEntry, perms: Permutations, missing: (name: string) => never): Int32Array | null {
  if (entry === null) return null;
  if (typeof entry === 'string') return perms[entry] ?? missing(entry);
  return expandBlockAxis(entry, perms, missing);
}

/**
 * Null when `p` (a permutation of blocks x size entries) maps every block onto itself, else
 * the first block it does not keep.
 */
export function blockViolation(p: Int32Array, blocks: number): number | null {
  const size = p.length / blocks;
  for (let i = 0; i < p.length; i++) {
    const b = Math.floor(i / size);
    if (p[i] < b * size || p[i] >= (b + 1) * size) return b;
  }
  return null;
}

/** Block g of a per-block permutation as a local permutation of 0..size-1. */
export function blockOf(p: Int32Array, blocks: number, g: number): Int32Array {
  const size = p.length / blocks;
  const out = new Int32Array(size);
  for (let i = 0; i < size; i++) out[i] = p[g * size + i] - g * size;
  return out;
}

/** The text form of a block axis (spec files and messages): one part as itself, several as `concat`. */
export function blockAxisToJson(axis: BlockAxis): unknown {
  const one = (p: BlockPart) => ({ split: [...p.split], perms: [...p.perms] });
  return axis.parts.length === 1 ? one(axis.parts[0]) : { concat: axis.parts.map(one) };
}
