/**
 * What a model family is to the engine: its forward pass. The family's core module
 * (src/core/families/) detects it, infers its spec and names its model-config keys.
 */
import type { PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import type { LmConfig } from '../lm/config';
import type { FamilyId } from '../../core/families/family';
import type { ModelConfig } from '../../core/families/modelConfig';
import type { Model } from '../compute/model';
import type { EquivalenceReport } from '../protocol';

export interface FamilyEquivalenceInput {
  readonly b: TensorMap;
  readonly piB: TensorMap;
  readonly spec: PermSpec;
  readonly perms: Permutations;
  readonly config: ModelConfig;
  readonly seed: number;
  /**
   * A Hugging Face checkpoint's config.json: the check then runs the LM forward pass (heads, KV
   * groups, RoPE as the file says), the one tested against `transformers`' logits.
   */
  readonly lmConfig?: LmConfig;
}

export interface EngineFamily {
  readonly id: FamilyId;
  /**
   * Logits [n, classes] from a classifier's weights: barriers, evaluation, BatchNorm reset,
   * activation matching and STE use it, and the equivalence check runs it on the data (or
   * random inputs). Absent for families without one yet (the transformers).
   */
  buildClassifier?(tensors: TensorMap, config: ModelConfig): Model;
  /**
   * The equivalence check of a family without a classifier (the transformers: seeded random
   * token ids). `log` lines go to the user.
   */
  checkEquivalence?(input: FamilyEquivalenceInput): { report: EquivalenceReport; log: string[] };
}
