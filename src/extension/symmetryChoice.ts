/**
 * The symmetry choice of "Align with…" (`--symmetry`): offered after the method, only for a
 * method that searches the orthogonal symmetry of the pair's kind (weight and activation matching: GPT-2, Llama
 * family, Mixtral, ViT; STE: the language models alone; core/symmetry/offered.ts). Pure: the QuickPick in
 * alignCommand.ts shows it.
 */
import type { MethodInfo } from '../core/methods';
import type { SymmetryId } from '../core/symmetry/settings';
import { orthogonalReaches, type OrthogonalModelKind } from '../core/symmetry/offered';

export interface SymmetryItem {
  readonly symmetry: SymmetryId;
  readonly label: string;
  readonly description: string;
  /** One line on what it means. */
  readonly detail: string;
}

const ITEMS: Readonly<Record<SymmetryId, SymmetryItem>> = {
  permutation: {
    symmetry: 'permutation',
    label: 'Permutations',
    description: "exact, the paper's symmetry",
    detail: "Permute B's units and heads onto A's; writes π(B) beside B.",
  },
  orthogonal: {
    symmetry: 'orthogonal',
    label: 'Orthogonal maps',
    description: 'residual stream rotations, per-head maps',
    detail: "Rotate B's residual stream and each head's query/key and value/output spaces onto A's; also writes A' (A with folded norms) beside the output.",
  },
};

/** The symmetries to choose from for `method` on a checkpoint (`offered`: it has an orthogonal layout); empty: permutations only, nothing to ask. */
export function symmetryChoices(method: Pick<MethodInfo, 'orthogonal' | 'needsData'>, kind: OrthogonalModelKind | undefined): readonly SymmetryItem[] {
  if (!orthogonalReaches(method, kind)) return [];
  const orthogonal = ITEMS.orthogonal;
  // What the data is for, where the method reads any: the maps are fitted to both models' activations on it.
  return [ITEMS.permutation, method.needsData ? { ...orthogonal, description: `${orthogonal.description}; needs data` } : orthogonal];
}
