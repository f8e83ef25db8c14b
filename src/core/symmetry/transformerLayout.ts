/**
 * Where the residual stream, the heads and the MLP units sit in a GPT-2 or Llama-family
 * checkpoint (Hugging Face names): which tensors write the stream, which read it through which
 * norm, and which slices of q/k/v/o belong to a head. One table per architecture; folding
 * (transformerFold.ts) and the group action (transformerGroup.ts) both read it.
 */
import type { TensorMap } from '../checkpoint';
import type { LmConfig } from '../families/lmConfig';

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
  readonly mlpWidth: number;
}

export interface TransformerLayout {
  readonly arch: 'gpt2' | 'llama';
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Rotary positions on q and k (Llama family): per-head QK maps must commute with them. */
  readonly rotary: boolean;
  /** LayerNorm (mean-centering) rather than RMSNorm. */
  readonly centered: boolean;
  /** Tensors [rows, hidden] whose rows are written into the stream (token and position embeddings). */
  readonly embeddings: readonly string[];
  /** The token embedding (what a tied output head reads). */
  readonly tokenEmbedding: string;
  readonly blocks: readonly BlockLayout[];
  readonly finalNorm: { readonly gain: string; readonly bias?: string };
  /** The output head `lm_head.weight` [vocab, hidden] and bias when untied. */
  readonly head: LinearLayer;
  readonly tied: boolean;
}

/** Thrown for a model the orthogonal symmetry does not (yet) handle; the message is one line. */
export class SymmetryUnsupported extends Error {
  override readonly name = 'SymmetryUnsupported';
}

/** The layout of a GPT-2 or Llama-family checkpoint; one-line refusal for anything else. */
export function transformerLayout(tensors: TensorMap, config: LmConfig): TransformerLayout {
  const where = config.file;
  if (config.family === 'bert') throw new SymmetryUnsupported(`${where}: BERT (post-LN) is not handled by the orthogonal symmetry yet`);
  if (config.gemma) throw new SymmetryUnsupported(`${where}: Gemma's (1 + weight) norms are not handled by the orthogonal symmetry yet`);
  const has = (n: string) => tensors.has(n);
  const opt = (n: string) => (has(n) ? n : undefined);
  const { layers, hidden, heads, kvHeads, headDim } = config;
  const blocks: BlockLayout[] = [];
  if (config.family === 'gpt2') {
    const p = has('transformer.wte.weight') ? 'transformer.' : '';
    const conv = (n: string): LinearLayer => ({ weight: `${n}.weight`, bias: opt(`${n}.bias`), storage: 'inOut' });
    for (let i = 0; i < layers; i++) {
      const h = `${p}h.${i}`;
      const attn = conv(`${h}.attn.c_attn`);
      const fc = conv(`${h}.mlp.c_fc`);
      blocks.push({
        attnNorm: { gain: `${h}.ln_1.weight`, bias: opt(`${h}.ln_1.bias`), readers: [attn] },
        mlpNorm: { gain: `${h}.ln_2.weight`, bias: opt(`${h}.ln_2.bias`), readers: [fc] },
        q: { layer: attn, offset: 0 },
        k: { layer: attn, offset: hidden },
        v: { layer: attn, offset: 2 * hidden },
        o: conv(`${h}.attn.c_proj`),
        mlpIn: [fc],
        mlpOut: conv(`${h}.mlp.c_proj`),
        mlpWidth: tensors.get(fc.weight)?.shape[1] ?? 0,
      });
    }
    return {
      arch: 'gpt2', hidden, heads, kvHeads, headDim, rotary: false, centered: true,
      embeddings: [`${p}wte.weight`, `${p}wpe.weight`], tokenEmbedding: `${p}wte.weight`, blocks,
      finalNorm: { gain: `${p}ln_f.weight`, bias: opt(`${p}ln_f.bias`) },
      head: { weight: 'lm_head.weight', storage: 'outIn' }, tied: config.tied,
    };
  }
  const p = has('model.embed_tokens.weight') ? 'model.' : '';
  const lin = (n: string): LinearLayer => ({ weight: `${n}.weight`, bias: opt(`${n}.bias`), storage: 'outIn' });
  for (let i = 0; i < layers; i++) {
    const l = `${p}layers.${i}`;
    if (has(`${l}.self_attn.q_norm.weight`)) throw new SymmetryUnsupported(`${where}: per-head q/k norms (Qwen3) are not handled by the orthogonal symmetry yet`);
    const [q, k, v] = ['q', 'k', 'v'].map((x) => lin(`${l}.self_attn.${x}_proj`));
    const [gate, up] = [lin(`${l}.mlp.gate_proj`), lin(`${l}.mlp.up_proj`)];
    blocks.push({
      attnNorm: { gain: `${l}.input_layernorm.weight`, readers: [q, k, v] },
      mlpNorm: { gain: `${l}.post_attention_layernorm.weight`, readers: [gate, up] },
      q: { layer: q, offset: 0 },
      k: { layer: k, offset: 0 },
      v: { layer: v, offset: 0 },
      o: lin(`${l}.self_attn.o_proj`),
      mlpIn: [gate, up],
      mlpOut: lin(`${l}.mlp.down_proj`),
      mlpWidth: tensors.get(gate.weight)?.shape[0] ?? 0,
    });
  }
  return {
    arch: 'llama', hidden, heads, kvHeads, headDim, rotary: true, centered: false,
    embeddings: [`${p}embed_tokens.weight`], tokenEmbedding: `${p}embed_tokens.weight`, blocks,
    finalNorm: { gain: `${p}norm.weight` },
    head: { weight: 'lm_head.weight', bias: opt('lm_head.bias'), storage: 'outIn' }, tied: config.tied,
  };
}
