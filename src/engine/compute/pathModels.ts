/**
 * Loading a pair of checkpoints for path evaluation: A and pi(B) as float32 tensor maps (only
 * floating-point tensors are interpolated; integer ones such as num_batches_tracked are left out,
 * the forward passes do not read them), plus the model config.
 */
import type { Checkpoint, DenseTensor, Permutations } from '../../core/checkpoint';
import { applyPermutations } from '../../core/matching/permute';
import { EngineError } from '../errors';
import { assertCompatible, closeAll, isFloatDtype, loadTensors, openAll, specFor } from '../loadTensors';
import { readModelConfig, type ModelConfig } from './modelConfig';

export interface PathEnds {
  readonly a: Map<string, DenseTensor>;
  /** B with the permutations applied (B itself when none). */
  readonly b: Map<string, DenseTensor>;
  readonly config: ModelConfig;
}

export interface PathEndsOptions {
  readonly a: string;
  readonly b: string;
  readonly perms?: Readonly<Record<string, readonly number[]>>;
  readonly spec?: string;
  readonly model?: string;
  readonly allowNonFinite?: boolean;
  readonly signal?: AbortSignal;
}

function floatNames(ck: Checkpoint): string[] {
  return ck.tensors.filter((t) => isFloatDtype(t.dtype)).map((t) => t.name);
}

export async function loadPathEnds(opts: PathEndsOptions): Promise<PathEnds> {
  const [ca, cb] = await openAll([opts.a, opts.b]);
  try {
    assertCompatible(ca, cb);
    const names = floatNames(ca);
    const load = { allowNonFinite: opts.allowNonFinite ?? true, signal: opts.signal };
    const a = await loadTensors(ca, names, load);
    let b = await loadTensors(cb, names, load);
    if (opts.perms && Object.keys(opts.perms).length > 0) {
      const { spec } = await specFor(opts.spec, ca, [cb]);
      const perms: Record<string, Int32Array> = {};
      for (const [k, v] of Object.entries(opts.perms)) {
        if (spec.perms[k] === undefined) throw new EngineError('InvalidRequest', `permutation \`${k}\` is not in the spec of ${ca.path}`);
        perms[k] = Int32Array.from(v);
      }
      b = applyPermutations(spec, perms as Permutations, b);
    }
    return { a, b, config: readModelConfig(ca.path, opts.model) };
  } finally {
    await closeAll([ca, cb]);
  }
}
