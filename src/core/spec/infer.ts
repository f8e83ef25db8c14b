/**
 * Permutation-spec inference from tensor names and shapes (header only, no weights read):
 * tries the transformer namings, then ResNets, then feed-forward chains (MLP / VGG), and
 * resolves the result, checking every permutation has one size on all its axes.
 * Family details and the choices made at awkward boundaries are in each family's file.
 */
import type { PermSpec } from '../checkpoint';
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import { inferResnet, resnetPrefix } from './inferResnet';
import { inferSequential, looksSequential } from './inferSequential';
import { detectTransformer, inferTransformer, type TransformerKind } from './inferTransformer';
import { buildPermSpec, type AxesTable, type TensorShape } from './shapes';

export type SpecFamily = 'mlp' | 'vgg' | 'resnet' | 'resnet-cifar' | 'transformer';

export interface InferredSpec {
  readonly family: SpecFamily;
  readonly spec: PermSpec;
  readonly notes: string[];
  /** Which transformer naming was recognised (only for family `transformer`). */
  readonly variant?: TransformerKind;
}

const SOURCE = 'inferred spec';

function resolve(axes: AxesTable, tensors: readonly TensorShape[], notes: string[]): PermSpec {
  try {
    const spec = buildPermSpec(axes, tensors, SOURCE);
    if (Object.keys(spec.perms).length === 0) notes.push('no hidden units to permute: aligning leaves the checkpoint as it is');
    return spec;
  } catch (e) {
    if (e instanceof SpecError) {
      throw new SpecError('Unplaceable', `${e.message}; ${HAND_WRITTEN_SPEC_HINT}`, SOURCE, e.tensor);
    }
    throw e;
  }
}

/** Infers the permutation spec of a checkpoint; throws SpecError (`Unplaceable`, `UnknownFamily`) naming what it could not place. */
export function inferSpec(tensors: readonly TensorShape[]): InferredSpec {
  const transformer = detectTransformer(tensors);
  if (transformer) {
    const r = inferTransformer(tensors, transformer.kind, transformer.prefix);
    return { family: 'transformer', variant: r.kind, spec: resolve(r.axes, tensors, r.notes), notes: r.notes };
  }
  const prefix = resnetPrefix(tensors);
  if (prefix !== null) {
    const r = inferResnet(tensors, prefix);
    return { family: r.family, spec: resolve(r.axes, tensors, r.notes), notes: r.notes };
  }
  if (looksSequential(tensors)) {
    const r = inferSequential(tensors);
    return { family: r.family, spec: resolve(r.axes, tensors, r.notes), notes: r.notes };
  }
  const first = tensors[0]?.name;
  throw new SpecError(
    'UnknownFamily',
    `${SOURCE}: no supported family (mlp, vgg, resnet, resnet-cifar, gpt-2/llama/bert transformer) matches these ${tensors.length} tensors${first ? ` (first: \`${first}\`)` : ''}; ${HAND_WRITTEN_SPEC_HINT}`,
    SOURCE,
    first,
  );
}
