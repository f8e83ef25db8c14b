/**
 * A language model's config as our forward passes read it (lmConfig.ts reads it from config.json,
 * lmShapes.ts builds it from the weights' shapes), and what a family declares to have one: the
 * config.json keys and defaults its forward pass reads.
 */
import type { TensorMap } from '../checkpoint';
import type { FamilyId } from './familyId';
import type { TransformerOptions } from './lmShapes';
import type { TensorShape } from '../permspec/shapes';
import type { TransformerLayout } from '../symmetry/transformerLayout';

/** Hidden activations we compute: exact erf GELU, tanh GELU, ReLU, SiLU. */
export type LmActivation = 'gelu' | 'gelu_tanh' | 'relu' | 'silu';

/** Rotary position settings (`rope_type` "default", "linear", "dynamic", "llama3"). */
export interface RopeConfig {
  readonly theta: number;
  readonly type: 'default' | 'linear' | 'dynamic' | 'llama3';
  /** Scaling factor (linear, dynamic, llama3). */
  readonly factor: number;
  /** llama3: the context the frequencies were trained for, and the band edges. */
  readonly originalMaxPositions?: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  /** Inverse frequencies a checkpoint stores (`rotary_emb.inv_freq`, weights without config.json): used as they are. */
  readonly invFreq?: { readonly values: Float32Array; readonly tensor: string };
}

export interface LmConfig {
  /** The config.json read (for messages). */
  readonly file: string;
  readonly modelType: string;
  /** The family whose forward pass runs it (GPT-2 blocks, Llama-style decoders incl. Mistral, Qwen2/3, Gemma, BERT). */
  readonly family: FamilyId;
  /** Causal next-token prediction, or masked-LM (BERT). */
  readonly objective: 'causal' | 'masked';
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** MLP hidden width (`n_inner` / `intermediate_size`), when the config gives it (GPT-2: 4 x hidden by default). */
  readonly intermediate?: number;
  readonly vocab: number;
  /** The longest sequence the model takes (learned position rows, or the rotary context). */
  readonly maxPositions: number;
  readonly eps: number;
  readonly act: LmActivation;
  /** Output head tied to the token embedding. */
  readonly tied: boolean;
  readonly rope?: RopeConfig;
  /** Mixture of experts (Mixtral): experts per layer (`num_local_experts`) and experts each token is routed to (`num_experts_per_tok`). */
  readonly experts?: { readonly count: number; readonly topK: number };
  /** Llama family: Gemma's RMSNorm scales by (1 + weight) and its embeddings by sqrt(hidden). */
  readonly gemma: boolean;
  /** Mistral/Qwen2 sliding-window attention span, when the config enables it. */
  readonly slidingWindow?: number;
  /** GPT-2: attention scores divided by sqrt(head_dim) (`scale_attn_weights`) and by layer index + 1 (`scale_attn_by_inverse_layer_idx`). */
  readonly scaleAttnWeights: boolean;
  readonly scaleAttnByLayer: boolean;
  /**
   * Built from the weights' shapes, no config.json (lmShapes.ts): where the head count came from,
   * and the output is whichever head the weights hold (Llama's `score`, BERT's task heads).
   */
  readonly fromShapes?: { readonly headsSource: string };
  /** Sizes the file left out and their class defaults, as `"max_position_embeddings" = 2048`. */
  readonly defaulted: readonly string[];
}

/** The context of one config.json read: the raw object and the readers that name the file and key in errors. */
export interface LmConfigReader {
  readonly raw: Readonly<Record<string, unknown>>;
  readonly file: string;
  readonly modelType: string;
  /** The first of `keys` present as a positive integer; else the class default, else `fallback`, else one line asking for it. */
  int(keys: readonly string[], what: string, fallback?: number): number;
  num(keys: readonly string[], fallback: number): number;
  bool(key: string, fallback: boolean): boolean;
  fail(msg: string): never;
}

/** The config.json keys most `transformers` config classes use (BertConfig, LlamaConfig and its relatives); GPT2Config has its own. */
export const HF_SIZE_KEYS = {
  layers: ['num_hidden_layers'],
  hidden: ['hidden_size'],
  heads: ['num_attention_heads'],
  positions: ['max_position_embeddings'],
  intermediate: 'intermediate_size',
  act: 'hidden_act',
} as const;

/** What a family's forward pass reads of config.json (its core module declares it). */
export interface CoreLm {
  /**
   * The config.json `model_type`s this family's forward pass reads, each with its transformers
   * config class: its name (for messages) and the sizes its `__init__` gives a key the file
   * leaves out (absent: derived from others, e.g. Llama's `num_key_value_heads` = heads).
   */
  readonly modelTypes: Readonly<Record<string, { readonly className: string; readonly defaults: Readonly<Record<string, number>> }>>;
  /** Causal next-token prediction, or masked-LM. */
  readonly objective: 'causal' | 'masked';
  /** Keys of the sizes, first found wins. */
  readonly keys: {
    readonly layers: readonly string[];
    readonly hidden: readonly string[];
    readonly heads: readonly string[];
    readonly positions: readonly string[];
    readonly intermediate: string;
    readonly eps: string;
    readonly act: string;
  };
  /** Class defaults of the keys that have no class-table entry. */
  readonly defaults: { readonly eps: number; readonly act: string; readonly tied: boolean; readonly intermediate?: (hidden: number) => number };
  /** `num_key_value_heads` and `head_dim` are read (grouped-query attention). */
  readonly groupedQuery: boolean;
  /** The family's own keys (rotary settings, score scaling, refusals), after the common ones. */
  extra?(r: LmConfigReader, common: { readonly headDim: number }): Partial<Pick<LmConfig, 'rope' | 'slidingWindow' | 'scaleAttnWeights' | 'scaleAttnByLayer' | 'experts'>>;
  /** The name prefix before the family's blocks (`transformer.`, `model.`, `bert.`, or empty); null when the tensors are not so named. */
  prefix(tensors: readonly TensorShape[]): string | null;
  /** The config from the weights' shapes and the model config's keys (no config.json: the equivalence check). */
  fromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig;
  /**
   * Where the stream, heads and MLP units sit for the orthogonal symmetry (core/symmetry/); it
   * throws SymmetryUnsupported for what it refuses. Absent: the symmetry does not handle the family.
   */
  orthogonalLayout?(tensors: TensorMap, config: LmConfig): TransformerLayout;
  /** Why the orthogonal symmetry refuses the family (no `orthogonalLayout`): one phrase, in its refusal. */
  readonly orthogonalUnsupported?: string;
}
