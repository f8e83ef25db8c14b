/**
 * Where the residual stream, the heads and the MLP units sit in a pre-norm transformer
 * checkpoint (Hugging Face names): which tensors write the stream, which read it through which
 * norm, and which slices of q/k/v/o belong to a head. One table per architecture, given by its
 * family (`CoreLm.orthogonalLayout` for language models: gpt2.ts, llama.ts, mixtral.ts;
 * `CoreFamily.orthogonalLayout` for classifiers: vit.ts); folding (transformerFold.ts) and the
 * group action (transformerGroup.ts) both read it.
 */
import type { TensorMap } from '../checkpoint';
import type { FamilyId } from '../families/familyId';
import type { LmConfig } from '../families/lm';
import type { ModelConfig } from '../families/modelConfig';
import { coreFamily } from '../families/registry';
import { SymmetryUnsupported } from './errors';

export { SymmetryUnsupported } from './errors';

/** A linear layer: GPT-2's Conv1D stores [in, out] (`inOut`), torch's Linear [out, in] (`outIn`). */
export interface LinearLayer {
  readonly weight: string;
  readonly bias?: string;
  readonly storage: 'inOut' | 'outIn';
}

/** The axis of the weight holding input (`in`) or output (`out`) features. */
export function featureAxis(l: LinearLayer, side: 'in' | 'out'): 0 | 1 {
  return (l.storage === 'inOut') === (side === 'in') ? 0 : 1;
}

/** A norm (gain, optional bias) and the linear layers that read its output. */
export interface NormSite {
  readonly gain: string;
  readonly bias?: string;
  readonly readers: readonly LinearLayer[];
}

/** Output features [offset, offset + width) of a layer (GPT-2 packs q|k|v in one `c_attn`). */
export interface OutputSlice {
  readonly layer: LinearLayer;
  readonly offset: number;
}

export interface BlockLayout {
  readonly attnNorm: NormSite;
  readonly mlpNorm: NormSite;
  readonly q: OutputSlice;
  readonly k: OutputSlice;
  readonly v: OutputSlice;
  readonly o: LinearLayer;
  /** Layers whose outputs are the MLP units (GPT-2 `c_fc`; Llama `gate_proj`, `up_proj`). */
  readonly mlpIn: readonly LinearLayer[];
  readonly mlpOut: LinearLayer;
  /** MLP units (a mixture of experts: all experts' units, stacked expert after expert). */
  readonly mlpWidth: number;
  /**
   * A mixture of experts (Mixtral): the MLP layers are the experts' stacked view
   * (core/moe/expertStack.ts), `count` experts of mlpWidth / count units; the router (also a
   * reader of `mlpNorm`) has one output row per expert. Units permute within their expert, and
   * experts as wholes, the router's rows with them.
   */
  readonly experts?: { readonly router: LinearLayer; readonly count: number };
}

export interface TransformerLayout {
  readonly arch: FamilyId;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Rotary positions on q and k (Llama family): per-head QK maps must commute with them. */
  readonly rotary: boolean;
  /** LayerNorm (mean-centering) rather than RMSNorm. */
  readonly centered: boolean;
  /** Tensors [..., hidden] whose rows are written into the stream (token and position embeddings, ViT's CLS token). */
  readonly embeddings: readonly string[];
  /** Layers that write the stream from the input (ViT's patch projection, a conv: output channels on axis 0). */
  readonly inputWriters?: readonly LinearLayer[];
  /** The token embedding (what a tied output head reads); absent without one (ViT). */
  readonly tokenEmbedding?: string;
  readonly blocks: readonly BlockLayout[];
  readonly finalNorm: { readonly gain: string; readonly bias?: string };
  /** The output head (`lm_head.weight` [vocab, hidden], ViT's `classifier`) and its bias when untied. */
  readonly head: LinearLayer;
  readonly tied: boolean;
}

/** The layout of a language-model checkpoint (GPT-2, Llama family, Mixtral), as its family gives it; one-line refusal for anything else. */
export function transformerLayout(tensors: TensorMap, config: LmConfig): TransformerLayout {
  if (config.gemma) throw new SymmetryUnsupported(`${config.file}: Gemma's (1 + weight) norms are not handled by the orthogonal symmetry yet`);
  const family = coreFamily(config.family);
  const layout = family.lm?.orthogonalLayout;
  if (!layout) throw new SymmetryUnsupported(`${config.file}: ${family.lm?.orthogonalUnsupported ?? `the ${family.label} is not handled by the orthogonal symmetry yet`}`);
  return layout(tensors, config);
}

/** The layout of a classifier checkpoint of `family` (ViT), as its family gives it; one-line refusal for anything else. */
export function classifierTransformerLayout(tensors: TensorMap, family: FamilyId, config: ModelConfig, file: string): TransformerLayout {
  const f = coreFamily(family);
  if (!f.orthogonalLayout) throw new SymmetryUnsupported(`${file}: the ${f.label} is not handled by the orthogonal symmetry (pre-norm transformers are: GPT-2, the Llama family, Mixtral, ViT)`);
  return f.orthogonalLayout(tensors, config, file);
}
