/** GPT-2 (Hugging Face naming: `h.N.attn.c_attn`, Conv1D weights stored [in, out]). */
import type { LmConfig } from './lmConfig';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { transformerFamily } from './transformer';
import type { TensorMap } from '../checkpoint';

/** Sizes from the shapes; tanh GELU and eps 1e-5 unless the model config says otherwise; every released size has head_dim 64. */
function gpt2FromShapes(tensors: TensorMap, opts: TransformerOptions, p: string): LmConfig {
  const [vocab, hidden] = shapeOf(tensors, `${p}wte.weight`, 2);
  const layers = countBlocks(tensors, `${p}h.`);
  const hc = resolveHeads('gpt2', [64], shapeOf(tensors, `${p}h.0.attn.c_attn.weight`, 2)[1] / 3, opts);
  return {
    ...FROM_SHAPES, modelType: 'gpt2', family: 'gpt2', objective: 'causal', layers, hidden, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${p}h.0.mlp.c_fc.weight`, 2)[1], vocab, maxPositions: shapeOf(tensors, `${p}wpe.weight`, 2)[0],
    eps: opts.eps ?? 1e-5, act: opts.gelu === 'exact' ? 'gelu' : 'gelu_tanh', tied: !tensors.has('lm_head.weight'),
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

export const gpt2 = transformerFamily('gpt2', 'Transformer (GPT-2 naming)', ['gpt2'], gpt2FromShapes);
