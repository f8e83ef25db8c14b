/**
 * Whether `--symmetry orthogonal` can be offered for a checkpoint, as far as its config.json
 * tells (the extension's method pick asks this before anything is loaded): a language model of a
 * family with an `orthogonalLayout` (GPT-2, the Llama family). What only the weights or the full
 * config tell (Gemma's norms, for one) is refused later, in one line, by the align handler.
 */
import { lmCheckpointFamily } from '../families/lmCheckpoint';
import { coreFamily } from '../families/registry';

export function orthogonalSymmetryOffered(p: string): boolean {
  const family = lmCheckpointFamily(p)?.family;
  return family !== undefined && coreFamily(family).lm?.orthogonalLayout !== undefined;
}
