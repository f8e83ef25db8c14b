/** BERT (`encoder.layer.N.attention.self.query`, post-LN, optional pooler and masked-LM head). */
import type { TensorMap } from '../checkpoint';
import type { LmConfig } from './lmConfig';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { transformerFamily } from './transformer';

/** Sizes from the shapes; exact GELU and eps 1e-12 unless the model config says otherwise; head_dim 64 by convention. */
function bertFromShapes(tensors: TensorMap, opts: TransformerOptions, p: string): LmConfig {
  const [vocab, hidden] = shapeOf(tensors, `${p}embeddings.word_embeddings.weight`, 2);
  const layers = countBlocks(tensors, `${p}encoder.layer.`);
  const hc = resolveHeads('bert', [64], shapeOf(tensors, `${p}encoder.layer.0.attention.self.query.weight`, 2)[0], opts);
  return {
    ...FROM_SHAPES, modelType: 'bert', family: 'bert', objective: 'masked', layers, hidden, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${p}encoder.layer.0.intermediate.dense.weight`, 2)[0], vocab,
    maxPositions: shapeOf(tensors, `${p}embeddings.position_embeddings.weight`, 2)[0],
    eps: opts.eps ?? 1e-12, act: opts.gelu === 'tanh' ? 'gelu_tanh' : 'gelu', tied: !tensors.has('cls.predictions.decoder.weight'),
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

export const bert = transformerFamily('bert', 'Transformer (BERT naming)', ['bert', 'roberta'], bertFromShapes);
