/**
 * Loading a pair of checkpoints for path evaluation: A and pi(B) as float32 tensor maps (only
 * floating-point tensors are interpolated; integer ones such as num_batches_tracked are left out,
 * the forward passes do not read them), plus the model config.
 */
import type { AxisEntry, Checkpoint, DenseTensor, Permutations, PermSpec } from '../../core/checkpoint';
import { entryPermutation } from '../../core/blockAxis';
import { applyPermutations } from '../../core/matching/permute';
import { EngineError } from '../errors';
import { assertCompatible, closeAll, isFloatDtype, loadTensors, openAll, specFor } from '../loadTensors';
import { readModelConfig, type ModelConfig } from './modelConfig';

export interface PathEnds {
  readonly a: Map<string, DenseTensor>;
  /** B with the permutations applied (B itself when none). */
  readonly b: Map<string, DenseTensor>;
  /** B as stored (the same map as `b` when no permutation was applied). */
  readonly bStored: Map<string, DenseTensor>;
  /** The permutations applied to B and the spec they act through, when any. */
  readonly applied?: { readonly spec: PermSpec; readonly perms: Permutations };
  readonly config: ModelConfig;
}

/**
 * How pi(B)'s layer `layer` relates to B's: `identity` (unpermuted), `outputs` (only its output
 * units are permuted, by gather indices `perm`: pi(B)'s output i is B's output perm[i], so its
 * outputs on any input are a column gather of B's), or `other` (its inputs move too).
 */
export type LayerPermutation = { readonly kind: 'identity' } | { readonly kind: 'outputs'; readonly perm: Int32Array } | { readonly kind: 'other' };

export function layerPermutation(ends: PathEnds, layer: string): LayerPermutation {
  if (!ends.applied) return { kind: 'identity' };
  const { spec, perms } = ends.applied;
  // A block axis (attention heads) as its gather indices; an entry naming a permutation without a value acts as none.
  const missing = (): never => {
    throw new RangeError('no value');
  };
  const active = (entry: AxisEntry | undefined): Int32Array | undefined => {
    if (entry === null || entry === undefined) return undefined;
    if (typeof entry === 'string') return perms[entry];
    try {
      return entryPermutation(entry, perms, missing) ?? undefined;
    } catch {
      return undefined;
    }
  };
  const wAxes = spec.axes[`${layer}.weight`] ?? [];
  const bAxes = ends.b.has(`${layer}.bias`) ? (spec.axes[`${layer}.bias`] ?? []) : [];
  const out = active(wAxes[0]);
  if (wAxes.slice(1).some((a) => active(a))) return { kind: 'other' };
  const biasPerm = active(bAxes[0]);
  if (!out) return biasPerm ? { kind: 'other' } : { kind: 'identity' };
  if (ends.b.has(`${layer}.bias`) && biasPerm !== out) return { kind: 'other' };
  return { kind: 'outputs', perm: out };
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
    const bStored = await loadTensors(cb, names, load);
    let b = bStored;
    let applied: PathEnds['applied'];
    if (opts.perms && Object.keys(opts.perms).length > 0) {
      const { spec } = await specFor(opts.spec, ca, [cb]);
      const perms: Record<string, Int32Array> = {};
      for (const [k, v] of Object.entries(opts.perms)) {
        if (spec.perms[k] === undefined) throw new EngineError('InvalidRequest', `permutation \`${k}\` is not in the spec of ${ca.path}`);
        perms[k] = Int32Array.from(v);
      }
      b = applyPermutations(spec, perms as Permutations, b);
      applied = { spec, perms };
    }
    return { a, b, bStored, ...(applied ? { applied } : {}), config: readModelConfig(ca.path, opts.model) };
  } finally {
    await closeAll([ca, cb]);
  }
}
