/**
 * Permutation-spec inference from tensor names and shapes (header only, no weights read): the
 * family registry (src/core/families/) picks the family, its module infers the axes, and the
 * result is resolved here, checking every permutation has one size on all its axes.
 * Family details and the choices made at awkward boundaries are in each family's inference file.
 */
import type { PermSpec } from '../checkpoint';
import { FAMILY_IDS, type FamilyId, type HfConfig, type FamilyName } from '../families/family';
import { detectFamily } from '../families/registry';
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import { flaxAsTorch, looksFlax } from './flaxLayout';
import { buildPermSpec, type AxesTable, type TensorShape } from './shapes';

export interface InferredSpec {
  /** The family (registry id). */
  readonly id: FamilyId;
  /** The family as the CLI's JSON and spec files name it (`transformer` for the three transformer namings). */
  readonly family: FamilyName;
  readonly spec: PermSpec;
  readonly notes: string[];
  /** Which transformer naming was recognised (only for family `transformer`). */
  readonly variant?: FamilyId;
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

/**
 * Infers the permutation spec of a checkpoint (`hf`: the `config.json` beside it, when present);
 * throws SpecError (`Unplaceable`, `UnknownFamily`) naming what it could not place.
 */
export function inferSpec(tensors: readonly TensorShape[], hf?: HfConfig): InferredSpec {
  if (looksFlax(tensors)) {
    // Flax names and layouts: inferred on their PyTorch view, axes mapped back (spec/flaxLayout.ts).
    const view = flaxAsTorch(tensors);
    const family = detectFamily(view.tensors, hf);
    if (family) {
      const r = family.infer(view.tensors, hf);
      const notes = [...r.notes, 'Flax layout: Dense kernels read as [in, out], Conv kernels as HWIO'];
      const variant = family.reportedAs !== family.id ? family.id : undefined;
      return { id: family.id, family: family.reportedAs, ...(variant ? { variant } : {}), spec: resolve(view.toFlax(r.axes), tensors, notes), notes };
    }
  }
  const family = detectFamily(tensors, hf);
  if (!family) {
    const first = tensors[0]?.name;
    const names = FAMILY_IDS.join(', ');
    throw new SpecError(
      'UnknownFamily',
      `${SOURCE}: no supported family (${names}) matches these ${tensors.length} tensors${first ? ` (first: \`${first}\`)` : ''}; ${HAND_WRITTEN_SPEC_HINT}`,
      SOURCE,
      first,
    );
  }
  const r = family.infer(tensors, hf);
  const variant = family.reportedAs !== family.id ? family.id : undefined;
  return { id: family.id, family: family.reportedAs, ...(variant ? { variant } : {}), spec: resolve(r.axes, tensors, r.notes), notes: r.notes };
}
