/**
 * What a model family is to core: detection (tensor names and shapes, `config.json` when
 * present), permutation-spec inference, and the model-config keys its forward pass reads.
 * The forward pass itself is the family's engine module (src/engine/families/). Adding a family:
 * one module here and one there, one line in each registry (`./registry.ts`,
 * src/engine/families/registry.ts), and tests.
 */
import type { TensorMap } from '../checkpoint';
import type { AxesTable, TensorShape } from '../permspec/shapes';
import type { TransformerLayout } from '../symmetry/transformerLayout';
import type { FamilyId, FamilyName } from './familyId';
import { FAMILY_IDS } from './familyId';
import type { CoreLm } from './lm';
import type { ModelConfig } from './modelConfig';

export { FAMILY_IDS, type FamilyId, type FamilyName } from './familyId';

/**
 * The fields of a Hugging Face `config.json` that detection and spec inference read (attention
 * head counts: `n_head` / `num_attention_heads`, `num_key_value_heads`, `head_dim`), overridden
 * by `heads` / `kvHeads` of the model config `<checkpoint>.rebasin.json` when present.
 */
export interface HfConfig {
  readonly model_type?: string;
  /** Attention (query) heads. */
  readonly heads?: number;
  /** Key/value heads (grouped-query attention); absent: as many as `heads`. */
  readonly kvHeads?: number;
  readonly headDim?: number;
  /** Mixture of experts: the experts the router picks per token (`num_experts_per_tok`). */
  readonly expertsPerToken?: number;
}

export interface FamilyInference {
  readonly axes: AxesTable;
  readonly notes: string[];
}

export interface CoreFamily {
  readonly id: FamilyId;
  /** Its name in the CLI's JSON and spec files: its id, or `transformer`. */
  readonly reportedAs: FamilyName;
  /** The family in words, for the inspector ("ResNet (torchvision naming)"). */
  readonly label: string;
  /** `config.json` `model_type` values naming this family. */
  readonly hfModelTypes?: readonly string[];
  /** True when the tensors look like this family (header only; the registry tries families in order). */
  detect(tensors: readonly TensorShape[]): boolean;
  /** The spec's axes table; throws SpecError naming what it cannot place. */
  infer(tensors: readonly TensorShape[], hf?: HfConfig): FamilyInference;
  /** The likely cause when π(B) computes another function than B (an equivalence failure). */
  readonly mismatchHint: string;
  /** Model-config keys this family's forward pass reads besides `family` (docs/cli.md). */
  readonly configKeys: readonly string[];
  /**
   * The model-config keys a `config.json` of this family gives its forward pass (readModelConfig
   * reads it beside the checkpoint; the model config's own keys win). Absent: not read for it.
   */
  modelConfigFromHf?(raw: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /**
   * A transformer classifier (ViT): where its stream, heads and MLP units sit for the orthogonal
   * symmetry (core/symmetry/); throws SymmetryUnsupported for what it refuses. Language models
   * declare theirs in `lm`. Absent: the symmetry does not handle the family.
   */
  orthogonalLayout?(tensors: TensorMap, config: ModelConfig, file: string): TransformerLayout;
  /** Language models: what their forward pass reads of config.json, or builds from the weights' shapes. */
  readonly lm?: CoreLm;
}

export function isFamilyId(s: unknown): s is FamilyId {
  return typeof s === 'string' && (FAMILY_IDS as readonly string[]).includes(s);
}
