/**
 * `barrier --aligned FILE` evaluates FILE as π(B). A file that is not B with its units permuted
 * (A itself, another run's model, a file with NaN weights) would give an "aligned barrier" of some
 * other network, so FILE is checked before any evaluation:
 * - the same tensors as B: names, dtypes and shapes;
 * - each tensor holds the same values as B's, in some order: a permutation moves values, never
 *   changes them. Compared as a multiset through two order-free hashes of the raw element bytes
 *   (one pass, one tensor of each file in memory at a time);
 * - its float weights are finite unless --allow-non-finite.
 * This is necessary for FILE = π(B), not sufficient (values shuffled within a tensor against the
 * spec pass), but it refuses every file that is not a rearrangement of B's weights.
 */
import * as path from 'node:path';
import type { Checkpoint } from '../core/checkpoint';
import { openCheckpoint } from '../core/safetensors';
import { dtypeBits } from '../core/safetensors/dtypes';
import { EngineError, throwIfCancelled } from './errors';
import { countNonFinite, isFloatDtype } from './loadTensors';
import { lmWeightsPath } from './lm/checkpoint';

/** Two independent 32-bit mixes of a 32-bit word (murmur3's finaliser with two seeds). */
function mix(x: number, seed: number): number {
  let h = (x ^ seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Order-free hash of the elements of `raw` (`size` bytes each): sums of two mixes of each element, mod 2^32. */
export function multisetHash(raw: Uint8Array, size: number): [number, number] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let s1 = 0;
  let s2 = 0;
  for (let o = 0; o + size <= raw.byteLength; o += size) {
    let word: number;
    if (size === 1) word = view.getUint8(o);
    else if (size === 2) word = view.getUint16(o, true);
    else if (size === 4) word = view.getUint32(o, true);
    else {
      // 8 bytes and more: fold the words of the element in order (their order within it matters).
      word = 0x9e3779b9;
      for (let k = 0; k + 4 <= size; k += 4) word = mix(word ^ view.getUint32(o + k, true), k + 1);
    }
    s1 = (s1 + mix(word, 0x1b873593)) >>> 0;
    s2 = (s2 + mix(word, 0xcc9e2d51)) >>> 0;
  }
  return [s1, s2];
}

const base = (p: string): string => path.basename(p);

/** Bytes per element for the hash: the dtype's size, 1 for sub-byte dtypes (their bytes then hash as a multiset). */
function elementBytes(dtype: string): number {
  const bits = dtypeBits(dtype);
  return bits >= 8 ? bits / 8 : 1;
}

async function compare(file: string, aligned: Checkpoint, b: Checkpoint, allowNonFinite: boolean, signal?: AbortSignal): Promise<void> {
  const notPermutation = (why: string): EngineError =>
    new EngineError('InvalidRequest', `${base(file)}: not an alignment of ${base(b.path)} (${why}); --aligned takes the checkpoint \`rebasin align\` wrote for these A and B`, file);
  const names = new Set(b.tensors.map((t) => t.name));
  for (const t of aligned.tensors) if (!names.has(t.name)) throw notPermutation(`tensor \`${t.name}\` is not in B`);
  for (const tb of b.tensors) {
    throwIfCancelled(signal, 'barrier');
    const ta = aligned.get(tb.name);
    if (!ta) throw notPermutation(`tensor \`${tb.name}\` is missing`);
    if (ta.dtype !== tb.dtype || ta.shape.join(',') !== tb.shape.join(',')) {
      throw notPermutation(`tensor \`${tb.name}\` is ${ta.dtype} [${ta.shape.join(', ')}], B's is ${tb.dtype} [${tb.shape.join(', ')}]`);
    }
    if (!allowNonFinite && isFloatDtype(ta.dtype)) {
      const bad = countNonFinite(await aligned.readFloat32(tb.name));
      if (bad > 0) throw new EngineError('NonFinite', `${base(file)}: tensor \`${tb.name}\` holds ${bad} NaN/Inf value${bad === 1 ? '' : 's'}; allow non-finite weights (--allow-non-finite) to use it anyway`, file);
    }
    const size = elementBytes(tb.dtype);
    const [x1, x2] = multisetHash(await aligned.readRaw(tb.name), size);
    const [y1, y2] = multisetHash(await b.readRaw(tb.name), size);
    if (x1 !== y1 || x2 !== y2) throw notPermutation(`tensor \`${tb.name}\` holds other values than B's, not B's values permuted`);
    // Big models: let other work (progress, a cancel) run between tensors.
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** Refuses (one line naming FILE) an aligned checkpoint that is not a permutation of B; see the module comment. */
export async function checkAlignedCheckpoint(file: string, b: string, allowNonFinite: boolean, signal?: AbortSignal): Promise<void> {
  const aligned = await openCheckpoint(lmWeightsPath(file));
  try {
    const original = await openCheckpoint(lmWeightsPath(b));
    try {
      await compare(file, aligned, original, allowNonFinite, signal);
    } finally {
      await original.close();
    }
  } finally {
    await aligned.close();
  }
}
