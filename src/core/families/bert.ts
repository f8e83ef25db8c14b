/** BERT (`encoder.layer.N.attention.self.query`, post-LN, optional pooler and masked-LM head). */
import type { TensorMap } from '../checkpoint';
import type { CoreLm, LmConfig } from './lm';
import { ModelError } from './modelErrors';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { namingPrefix, transformerFamily } from './transformer';

/** Sizes from the shapes; exact GELU and eps 1e-12 unless the model config says otherwise; head_dim 64 by convention. */
function bertFromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const p = namingPrefix(tensors, 'bert');
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

/** BertConfig's keys and defaults; only absolute position embeddings run here. */
const lm: CoreLm = {
  modelTypes: { bert: { className: 'BertConfig', defaults: { num_hidden_layers: 12, hidden_size: 768, num_attention_heads: 12, vocab_size: 30522, max_position_embeddings: 512, intermediate_size: 3072 } } },
  objective: 'masked',
  keys: {
    layers: ['num_hidden_layers'],
    hidden: ['hidden_size'],
    heads: ['num_attention_heads'],
    positions: ['max_position_embeddings'],
    intermediate: 'intermediate_size',
    eps: 'layer_norm_eps',
    act: 'hidden_act',
  },
  defaults: { eps: 1e-12, act: 'gelu', tied: true },
  groupedQuery: false,
  extra: (r) => {
    const pet = r.raw.position_embedding_type;
    if (pet !== undefined && pet !== 'absolute') throw new ModelError('Unsupported', `${r.file}: BERT "position_embedding_type" ${JSON.stringify(pet)} is not supported (only "absolute")`, r.file);
    return {};
  },
  fromShapes: bertFromShapes,
};

export const bert = transformerFamily('bert', 'Transformer (BERT naming)', ['bert', 'roberta'], lm);
