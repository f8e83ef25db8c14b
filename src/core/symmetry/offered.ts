/**
 * Whether `--symmetry orthogonal` can be offered for a checkpoint, as far as its config.json
 * tells (the extension's method pick asks this before anything is loaded): a model of a family
 * with an `orthogonalLayout` (language models: GPT-2, the Llama family, Mixtral; classifiers:
 * ViT), and which kind it is (the orthogonal STE is for language models alone). What only the
 * weights or the full config tell (Gemma's norms, for one) is refused later, in one line, by the
 * align handler.
 */
import { hfModelType } from '../hf/layout';
import { lmCheckpointFamily } from '../families/lmCheckpoint';
import { CORE_FAMILIES, coreFamily } from '../families/registry';
import type { MethodInfo } from '../methods/method';

/** The kind of model whose orthogonal symmetry `p` has, per its config.json; undefined: none offered. */
export function orthogonalModelKind(p: string): OrthogonalModelKind | undefined {
  const lm = lmCheckpointFamily(p);
  if (lm) return lm.family !== undefined && coreFamily(lm.family).lm?.orthogonalLayout !== undefined ? 'language model' : undefined;
  // A classifier family naming itself by config.json's model_type (ViT).
  const modelType = hfModelType(p);
  const family = modelType !== undefined ? CORE_FAMILIES.find((f) => !f.lm && f.hfModelTypes?.includes(modelType)) : undefined;
  return family?.orthogonalLayout !== undefined ? 'classifier' : undefined;
}

export type OrthogonalModelKind = 'language model' | 'classifier';

/** Whether `method` searches the orthogonal symmetry of a pair of this kind (undefined: the pair has none). */
export function orthogonalReaches(method: Pick<MethodInfo, 'orthogonal'>, kind: OrthogonalModelKind | undefined): boolean {
  if (kind === undefined || method.orthogonal === undefined) return false;
  return method.orthogonal === 'every model' || kind === 'language model';
}
