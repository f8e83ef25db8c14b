/**
 * The symmetry choice of "Align with…" (`--symmetry`): offered after the method, only for a
 * method that searches the orthogonal symmetry (activation matching) on a checkpoint that has one
 * (GPT-2, Llama family, Mixtral, ViT: core/symmetry/offered.ts). Pure: the QuickPick in alignCommand.ts shows it.
 */
import type { MethodInfo } from '../core/methods';
import type { SymmetryId } from '../core/symmetry/settings';

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
    description: 'residual stream rotations, per-head maps; needs data',
    detail: "Rotate B's residual stream and each head's query/key and value/output spaces onto A's; also writes A' (A with folded norms) beside the output.",
  },
};

/** The symmetries to choose from for `method` on a checkpoint (`offered`: it has an orthogonal layout); empty: permutations only, nothing to ask. */
export function symmetryChoices(method: Pick<MethodInfo, 'orthogonal'>, offered: boolean): readonly SymmetryItem[] {
  return method.orthogonal === true && offered ? [ITEMS.permutation, ITEMS.orthogonal] : [];
}
