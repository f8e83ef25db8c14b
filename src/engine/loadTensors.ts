/**
 * Loading checkpoints for the handlers: open a compatible pair, resolve or infer the spec,
 * read the spec's tensors as float32 (refusing NaN/Inf unless allowed), and permute raw tensor
 * bytes (so π(B) keeps B's dtypes bit for bit, whatever they are).
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Checkpoint, DenseTensor, PermSpec, Permutations } from '../core/checkpoint';
import { entryPermutation } from '../core/blockAxis';
import { openCheckpoint } from '../core/safetensors';
import { checkCompatible, inferSpec, parseSpecFile, resolveSpec, SpecError } from '../core/spec';
import { readHfConfig } from '../core/families/hfConfig';
import { EngineError, throwIfCancelled } from './errors';

export const base = (p: string): string => path.basename(p);

/** Opens every path; closes the ones already open when one fails. */
export async function openAll(paths: readonly string[]): Promise<Checkpoint[]> {
  const opened: Checkpoint[] = [];
  try {
    for (const p of paths) opened.push(await openCheckpoint(p));
    return opened;
  } catch (e) {
    await closeAll(opened);
    throw e;
  }
}

export async function closeAll(cks: readonly Checkpoint[]): Promise<void> {
  await Promise.all(cks.map((c) => c.close().catch(() => undefined)));
}

/** Throws the first difference (names, then shapes) between two checkpoints, naming the tensor. */
export function assertCompatible(a: Checkpoint, b: Checkpoint): void {
  const diff = checkCompatible(a.tensors, b.tensors, base(a.path), base(b.path));
  if (diff) throw diff;
}

export interface ResolvedSpec {
  readonly spec: PermSpec;
  readonly family?: string;
  readonly notes: readonly string[];
}

/** The spec from `specPath` (checked against the checkpoints) or inferred from A's names and shapes. */
export async function specFor(specPath: string | undefined, a: Checkpoint, others: readonly Checkpoint[], modelConfigPath?: string): Promise<ResolvedSpec> {
  if (specPath !== undefined) {
    let text: string;
    try {
      text = await readFile(specPath, 'utf8');
    } catch (e) {
      const code = typeof e === 'object' && e !== null && 'code' in e ? ` (${String(e.code)})` : '';
      throw new SpecError('BadStructure', `${base(specPath)}: cannot read the spec file${code}`, specPath);
    }
    const file = parseSpecFile(text, base(specPath));
    let spec: PermSpec | undefined;
    for (const b of others.length ? others : [undefined]) {
      spec = resolveSpec(file, a.tensors, b?.tensors, base(specPath), { a: base(a.path), b: b ? base(b.path) : 'checkpoint b' });
    }
    return { spec: spec!, family: file.family, notes: file.notes ?? [] };
  }
  for (const b of others) assertCompatible(a, b);
  const inferred = inferSpec(a.tensors, readHfConfig(a.path, modelConfigPath));
  return { spec: inferred.spec, family: inferred.family, notes: inferred.notes };
}

/** Floating-point dtypes: interpolated by merge. Integers, BOOL and complex are copied from A. */
export function isFloatDtype(dtype: string): boolean {
  return /^(F\d|BF16)/.test(dtype);
}

/** Counts NaN and ±Inf values. */
export function countNonFinite(x: Float32Array): number {
  let bad = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) bad++;
  return bad;
}

export interface LoadOptions {
  readonly allowNonFinite?: boolean;
  readonly signal?: AbortSignal;
  /**
   * With allowNonFinite: replace NaN/Inf by 0 in the loaded copy (the assignment solver needs
   * finite costs) and record the tensor's name here. Outputs are written from the raw values.
   */
  readonly zeroNonFinite?: Set<string>;
}

/** Reads one tensor as float32 and refuses NaN/Inf (naming file and tensor) unless allowed. */
export async function readChecked(ck: Checkpoint, name: string, opts: LoadOptions): Promise<DenseTensor> {
  const info = ck.get(name);
  if (!info) throw new EngineError('InvalidRequest', `${base(ck.path)}: tensor \`${name}\` not found`, ck.path);
  let data = await ck.readFloat32(name);
  if (isFloatDtype(info.dtype)) {
    const bad = countNonFinite(data);
    if (bad > 0 && opts.allowNonFinite) {
      if (opts.zeroNonFinite) {
        data = data.map((v) => (Number.isFinite(v) ? v : 0));
        opts.zeroNonFinite.add(name);
      }
    } else if (bad > 0) {
      throw new EngineError(
        'NonFinite',
        `${base(ck.path)}: tensor \`${name}\` holds ${bad} NaN/Inf value${bad === 1 ? '' : 's'}; allow non-finite weights (--allow-non-finite) to use it anyway`,
        ck.path,
      );
    }
  }
  return { shape: info.shape, data };
}

/** Reads the named tensors as float32, checking cancellation between tensors. */
export async function loadTensors(ck: Checkpoint, names: readonly string[], opts: LoadOptions): Promise<Map<string, DenseTensor>> {
  const out = new Map<string, DenseTensor>();
  for (const name of names) {
    throwIfCancelled(opts.signal, 'loading tensors');
    out.set(name, await readChecked(ck, name, opts));
  }
  return out;
}

/** Per-axis gather indices of one tensor under `perms` (null where no permutation acts). */
export function axisPermutations(spec: PermSpec, perms: Permutations, tensor: string, rank: number): (Int32Array | null)[] {
  const axes = spec.axes[tensor];
  if (!axes) return new Array<Int32Array | null>(rank).fill(null);
  return axes.map((p) => {
    try {
      return entryPermutation(p, perms, (name) => { throw new Error(name); });
    } catch {
      return null;
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
 * dtype whose elements are whole bytes (1, 2, 4 or 8). Sub-byte dtypes (F4, F6) are refused.
 */
export function permuteRawBytes(bytes: Uint8Array, dtype: string, shape: readonly number[], axisPerms: readonly (Int32Array | null)[], file: string, tensor: string): Uint8Array {
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
      throw new EngineError('InvalidRequest', `${base(file)}: tensor \`${tensor}\` has dtype ${dtype}, whose elements are not whole bytes: it cannot be permuted`, file);
  }
  return out;
}
