/**
 * `barrier --aligned FILE` evaluates FILE as π(B). A file that is not B with its units permuted
 * (A itself, another run's model, a file with NaN weights, B's values shuffled against the spec)
 * would give an "aligned barrier" of some other network, so FILE is checked before any
 * evaluation, one tensor of each file in memory at a time:
 * - the same tensors as B: names, dtypes and shapes; finite float weights unless --allow-non-finite;
 * - FILE is π(B) for the spec (--spec, else inferred from B): the permutations are recovered from
 *   the two files (core/matching/recoverPermutations.ts), then B permuted by them must reproduce
 *   every tensor of FILE bit for bit (tensors the spec does not name: B's bytes unchanged).
 * When no spec can be inferred and none is given: each tensor must hold B's values in some order
 * (order-free hashes of the bytes: true of any permutation), then FILE must compute B's function
 * (the equivalence check, run by the caller in a worker: forward passes on a few examples).
 */
import * as path from 'node:path';
import type { Checkpoint, PermSpec } from '../core/checkpoint';
import { openCheckpoint } from '../core/safetensors';
import { stackExperts } from '../core/moe/expertStack';
import { dtypeBits } from '../core/safetensors/dtypes';
import { SpecError } from '../core/permspec';
import { axisPermutations } from '../core/matching/permute';
import { multisetHash, sliceHashes, UnitSignatures } from '../core/matching/recoverPermutations';
import { EngineError, throwIfCancelled } from './errors';
import { countNonFinite, isFloatDtype, permuteRawBytes, specFor } from './loadTensors';
import { lmWeightsPath } from './lm/checkpoint';
import type { EquivalenceResult } from './protocol';

export { multisetHash } from '../core/matching/recoverPermutations';

const base = (p: string): string => path.basename(p);

/** Bytes per element for the hash: the dtype's size, 1 for sub-byte dtypes (their bytes then hash as a multiset). */
function elementBytes(dtype: string): number {
  const bits = dtypeBits(dtype);
  return bits >= 8 ? bits / 8 : 1;
}

/** Lets other work (progress, a cancel) run between tensors of a big model. */
const yieldNow = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  return x.byteLength === y.byteLength && Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

interface CheckOptions {
  readonly allowNonFinite: boolean;
  /** The spec file the barrier was given (else inferred from B's names and shapes). */
  readonly spec?: string;
  /** The model config the barrier was given (spec inference of a Hugging Face checkpoint). */
  readonly model?: string;
  readonly signal?: AbortSignal;
  /** Runs the equivalence check of FILE against B (used when there is no spec). */
  readonly equivalence?: () => Promise<EquivalenceResult>;
}

class AlignedCheck {
  constructor(private readonly file: string, private readonly aligned: Checkpoint, private readonly b: Checkpoint, private readonly opts: CheckOptions) {}

  notPermutation(why: string): EngineError {
    return new EngineError('InvalidRequest', `${base(this.file)}: not an alignment of ${base(this.b.path)} (${why}); --aligned takes the checkpoint \`rebasin align\` wrote for these A and B`, this.file);
  }

  /** Names, dtypes, shapes; finite weights. */
  async structure(): Promise<void> {
    const names = new Set(this.b.tensors.map((t) => t.name));
    for (const t of this.aligned.tensors) if (!names.has(t.name)) throw this.notPermutation(`tensor \`${t.name}\` is not in B`);
    for (const tb of this.b.tensors) {
      throwIfCancelled(this.opts.signal, 'barrier');
      const ta = this.aligned.get(tb.name);
      if (!ta) throw this.notPermutation(`tensor \`${tb.name}\` is missing`);
      if (ta.dtype !== tb.dtype || ta.shape.join(',') !== tb.shape.join(',')) {
        throw this.notPermutation(`tensor \`${tb.name}\` is ${ta.dtype} [${ta.shape.join(', ')}], B's is ${tb.dtype} [${tb.shape.join(', ')}]`);
      }
      if (!this.opts.allowNonFinite && isFloatDtype(ta.dtype)) {
        const bad = countNonFinite(await this.aligned.readFloat32(tb.name));
        if (bad > 0) throw new EngineError('NonFinite', `${base(this.file)}: tensor \`${tb.name}\` holds ${bad} NaN/Inf value${bad === 1 ? '' : 's'}; allow non-finite weights (--allow-non-finite) to use it anyway`, this.file);
        await yieldNow();
      }
    }
  }

  /** The permutations taking B to FILE, as far as the signatures of their units tell. */
  async recover(spec: PermSpec): Promise<Record<string, Int32Array>> {
    const signatures = new UnitSignatures(spec);
    for (const [name, entries] of Object.entries(spec.axes)) {
      throwIfCancelled(this.opts.signal, 'barrier');
      const info = this.b.get(name)!;
      const size = elementBytes(info.dtype);
      const axes = UnitSignatures.permutedAxes(entries);
      const hb = sliceHashes(await this.b.readRaw(name), size, info.shape, axes);
      const hf = sliceHashes(await this.aligned.readRaw(name), size, info.shape, axes);
      signatures.add(entries, hb, hf);
      await yieldNow();
    }
    return signatures.recover();
  }

  /** B permuted by `perms` must be FILE, bit for bit, tensor by tensor. */
  async verify(spec: PermSpec, perms: Record<string, Int32Array>): Promise<void> {
    for (const t of this.b.tensors) {
      throwIfCancelled(this.opts.signal, 'barrier');
      const axisPerms = axisPermutations(spec, perms, t.name, t.shape.length);
      const expected = permuteRawBytes(await this.b.readRaw(t.name), t.dtype, t.shape, axisPerms, this.b.path, t.name);
      if (!sameBytes(expected, await this.aligned.readRaw(t.name))) {
        const how = spec.axes[t.name] ? 'B\'s tensor permuted consistently with the spec' : 'B\'s tensor (the spec does not permute it)';
        throw this.notPermutation(`tensor \`${t.name}\` is not ${how}`);
      }
      await yieldNow();
    }
  }

  /** Without a spec: each tensor holds B's values in some order. */
  async sameValues(): Promise<void> {
    for (const tb of this.b.tensors) {
      throwIfCancelled(this.opts.signal, 'barrier');
      const size = elementBytes(tb.dtype);
      const [x1, x2] = multisetHash(await this.aligned.readRaw(tb.name), size);
      const [y1, y2] = multisetHash(await this.b.readRaw(tb.name), size);
      if (x1 !== y1 || x2 !== y2) throw this.notPermutation(`tensor \`${tb.name}\` holds other values than B's, not B's values permuted`);
      await yieldNow();
    }
  }

  /** Without a spec: FILE computes B's function (when a forward pass exists and fits the budget). */
  async sameFunction(): Promise<void> {
    const r = await this.opts.equivalence?.();
    const e = r?.equivalence;
    if (!e || e.ok) return;
    const on = e.batch === 'data' ? 'examples of the data' : 'random inputs';
    throw this.notPermutation(`it computes another function than B: largest logit difference ${e.maxAbsDiff.toPrecision(3)}, ${e.relDiff.toPrecision(3)} of the largest logit, on ${on}`);
  }
}

/** The spec FILE is checked against; undefined when none is given and none can be inferred. */
async function specOf(b: Checkpoint, aligned: Checkpoint, opts: CheckOptions): Promise<PermSpec | undefined> {
  try {
    return (await specFor(opts.spec, b, [aligned], opts.model)).spec;
  } catch (e) {
    if (opts.spec === undefined && e instanceof SpecError && (e.kind === 'Unplaceable' || e.kind === 'UnknownFamily')) return undefined;
    throw e;
  }
}

/** Refuses (one line naming FILE) an aligned checkpoint that is not π(B); see the module comment. */
export async function checkAlignedCheckpoint(file: string, b: string, opts: CheckOptions): Promise<void> {
  // Experts stacked (core/moe/expertStack.ts), as the alignment saw them.
  const aligned = stackExperts(await openCheckpoint(lmWeightsPath(file)));
  try {
    const original = stackExperts(await openCheckpoint(lmWeightsPath(b)));
    try {
      const check = new AlignedCheck(file, aligned, original, opts);
      await check.structure();
      const spec = await specOf(original, aligned, opts);
      if (spec === undefined) {
        await check.sameValues();
        await check.sameFunction();
        return;
      }
      await check.verify(spec, await check.recover(spec));
    } finally {
      await original.close();
    }
  } finally {
    await aligned.close();
  }
}
