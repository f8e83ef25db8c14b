/**
 * Loading checkpoints for the handlers: open a compatible pair, resolve or infer the spec,
 * read the spec's tensors as float32 (refusing NaN/Inf unless allowed), and permute raw tensor
 * bytes (so π(B) keeps B's dtypes bit for bit, whatever they are).
 */
import * as path from 'node:path';
import type { Checkpoint, DenseTensor, PermSpec, Permutations, TensorInfo } from '../core/checkpoint';
import { displayName, InputFileError, MAX_JSON_BYTES, readBoundedFile, utf8Text } from '../core/files';
import { weightsPath } from '../core/hf/layout';
import { halfBits, openCheckpoint } from '../core/safetensors';
import { exponentMask, isHalfDtype, type HeldTensor } from '../core/heldTensor';
import { checkCompatible, inferSpec, parseSpecFile, resolveSpec, SpecError } from '../core/permspec';
import { readHfConfig } from '../core/families/hfConfig';
import { EngineError, throwIfCancelled } from './errors';
import { permuteBytes } from '../core/matching/permute';
import { stackExperts } from '../core/moe/expertStack';

/** A file's name in messages: `gpt2-a/model.safetensors` for a Hugging Face folder's (core/files.ts). */
export const base = (p: string): string => displayName(p);

/**
 * Opens every path (a Hugging Face folder through its weights); closes the ones already open when
 * one fails. Mixture-of-experts layers are seen stacked (core/moe/expertStack.ts), so that the
 * experts' order is an axis for the spec; `asStored` keeps every tensor as the file names it.
 */
export async function openAll(paths: readonly string[], opts: { readonly asStored?: boolean } = {}): Promise<Checkpoint[]> {
  const opened: Checkpoint[] = [];
  try {
    for (const p of paths) {
      const ck = await openCheckpoint(weightsPath(p));
      opened.push(opts.asStored ? ck : stackExperts(ck));
    }
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
      text = utf8Text(await readBoundedFile(specPath, MAX_JSON_BYTES, 'spec'));
    } catch (e) {
      if (e instanceof InputFileError && e.kind !== 'Io') throw e;
      const c: unknown = e instanceof InputFileError ? e.cause : e;
      const code = typeof c === 'object' && c !== null && 'code' in c ? ` (${String(c.code)})` : '';
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
  let inferred;
  try {
    inferred = inferSpec(a.tensors, readHfConfig(a.path, modelConfigPath));
  } catch (e) {
    // Inference reads A's names and shapes: its refusals are about A (as `rebasin spec` says them).
    if (e instanceof SpecError && e.file === 'inferred spec') {
      throw new SpecError(e.kind, `${base(a.path)}: ${e.message.replace(/^inferred spec: /, 'inferring the spec: ')}`, a.path, e.tensor);
    }
    throw e;
  }
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

/** Refuses `bad` NaN/Inf values of a tensor, naming file and tensor, unless allowed; true when they are to be zeroed. */
export function nonFinite(ck: Checkpoint, name: string, bad: number, opts: LoadOptions): boolean {
  if (bad === 0) return false;
  if (!opts.allowNonFinite) {
    throw new EngineError(
      'NonFinite',
      `${base(ck.path)}: tensor \`${name}\` holds ${bad} NaN/Inf value${bad === 1 ? '' : 's'}; allow non-finite weights (--allow-non-finite) to use it anyway`,
      ck.path,
    );
  }
  if (!opts.zeroNonFinite) return false;
  opts.zeroNonFinite.add(name);
  return true;
}

function infoOf(ck: Checkpoint, name: string): TensorInfo {
  const info = ck.get(name);
  if (!info) throw new EngineError('InvalidRequest', `${base(ck.path)}: tensor \`${name}\` not found`, ck.path);
  return info;
}

/** Reads one tensor as float32 and refuses NaN/Inf (naming file and tensor) unless allowed. */
export async function readChecked(ck: Checkpoint, name: string, opts: LoadOptions): Promise<DenseTensor> {
  const info = infoOf(ck, name);
  let data = await ck.readFloat32(name);
  if (isFloatDtype(info.dtype) && nonFinite(ck, name, countNonFinite(data), opts)) data = data.map((v) => (Number.isFinite(v) ? v : 0));
  return { shape: info.shape, data };
}

/**
 * Reads one tensor as weight matching holds it: 16-bit floats (BF16, F16) as stored, anything
 * else as float32; NaN/Inf refused or zeroed as in `readChecked`.
 */
export async function readHeld(ck: Checkpoint, name: string, opts: LoadOptions): Promise<HeldTensor> {
  const info = infoOf(ck, name);
  const dtype = info.dtype;
  if (!isHalfDtype(dtype)) return readChecked(ck, name, opts);
  const bits = halfBits(await ck.readRaw(name), ck.path, name);
  const mask = exponentMask(dtype);
  let bad = 0;
  for (let i = 0; i < bits.length; i++) if ((bits[i] & mask) === mask) bad++;
  if (nonFinite(ck, name, bad, opts)) for (let i = 0; i < bits.length; i++) if ((bits[i] & mask) === mask) bits[i] = 0;
  return { shape: info.shape, dtype, bits };
}

/** Reads the named tensors, checking cancellation between tensors; `onTensor` after each one. */
async function loadEach<T>(ck: Checkpoint, names: readonly string[], opts: LoadOptions, read: (ck: Checkpoint, name: string, opts: LoadOptions) => Promise<T>, onTensor?: (done: number, total: number) => void): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  for (const name of names) {
    throwIfCancelled(opts.signal, 'loading tensors');
    out.set(name, await read(ck, name, opts));
    onTensor?.(out.size, names.length);
  }
  return out;
}

/** Reads the named tensors as float32 (see `loadEach`). */
export function loadTensors(ck: Checkpoint, names: readonly string[], opts: LoadOptions, onTensor?: (done: number, total: number) => void): Promise<Map<string, DenseTensor>> {
  return loadEach(ck, names, opts, readChecked, onTensor);
}

/** Reads the named tensors as weight matching holds them (`readHeld`): a BF16 model stays at 2 bytes a value. */
export function loadHeldTensors(ck: Checkpoint, names: readonly string[], opts: LoadOptions, onTensor?: (done: number, total: number) => void): Promise<Map<string, HeldTensor>> {
  return loadEach(ck, names, opts, readHeld, onTensor);
}

/**
 * Permutes a tensor's raw little-endian bytes along the given axes without decoding (core's
 * `permuteBytes`), refusing sub-byte dtypes (F4, F6) in the user's terms.
 */
export function permuteRawBytes(bytes: Uint8Array, dtype: string, shape: readonly number[], axisPerms: readonly (Int32Array | null)[], file: string, tensor: string): Uint8Array {
  const out = permuteBytes(bytes, shape, axisPerms);
  if (out === null) {
    throw new EngineError('InvalidRequest', `${base(file)}: tensor \`${tensor}\` has dtype ${dtype}, whose elements are not whole bytes: it cannot be permuted`, file);
  }
  return out;
}
