/**
 * Which language-model family a checkpoint is, resolved once per request by id: a Hugging Face
 * folder, or weights with a config.json beside them naming a `model_type`, is a language model
 * (token data, its family's LM forward pass) of the family whose `lm.modelTypes` has that type.
 * Undefined for anything else: image classifiers (a `.rebasin.json` or nothing beside them; their
 * family is detected from the tensors), and a `model_type` a classifier family claims
 * (`hfModelTypes` without `lm`).
 */
import { hfModelType, isLanguageModelCheckpoint } from '../hf/layout';
import type { FamilyId } from './familyId';
import { CORE_FAMILIES } from './registry';

export interface LmCheckpointFamily {
  /**
   * The family whose forward pass reads its `model_type`; absent when none does (or config.json
   * is missing): reading its config.json where it is used says why, in one line.
   */
  readonly family?: FamilyId;
}

export function lmCheckpointFamily(p: string): LmCheckpointFamily | undefined {
  if (!isLanguageModelCheckpoint(p)) return undefined;
  const modelType = hfModelType(p);
  if (modelType === undefined) return {};
  const lm = CORE_FAMILIES.find((f) => f.lm && Object.hasOwn(f.lm.modelTypes, modelType));
  if (lm) return { family: lm.id };
  const claimed = CORE_FAMILIES.find((f) => f.hfModelTypes?.includes(modelType));
  return claimed && !claimed.lm ? undefined : {};
}
