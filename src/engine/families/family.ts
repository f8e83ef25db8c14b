/**
 * What a model family is to the engine: its forward pass, a classifier's or a language model's
 * with what the generic LM code asks of it. The family's core module (src/core/families/)
 * detects it, infers its spec, names its model-config keys and, for a language model, builds
 * its config from the weights' shapes.
 */
import type { PermSpec, Permutations, TensorMap } from '../../core/checkpoint';
import type { LmArchitecture } from '../lm/architecture';
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
   * random inputs). Absent for language models (`lm`).
   */
  buildClassifier?(tensors: TensorMap, config: ModelConfig): Model;
  /**
   * A language model's forward pass (logits, tested against `transformers`'), its features for
   * activation matching, its parameter count and REPAIR's units: LM barriers, activation
   * matching and the equivalence check (seeded random token ids) run it.
   */
  readonly lm?: LmArchitecture;
}
