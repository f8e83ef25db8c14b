/** Llama and its namesakes (`layers.N.self_attn.q_proj`, RMSNorm, rotary embeddings, gated MLP). */
import type { TensorMap } from '../checkpoint';
import type { LmConfig } from './lmConfig';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { ModelError } from './modelErrors';
import { transformerFamily } from './transformer';

/**
 * Sizes from the shapes; head_dim from the rotary `inv_freq` buffer or Qwen3's `q_norm` when the
 * file holds one, else 64 or 128 when only one divides the width; the rotary frequencies from
 * the buffer, else base `ropeTheta` (10000). No position table: any length runs.
 */
function llamaFromShapes(tensors: TensorMap, opts: TransformerOptions, p: string): LmConfig {
  const [vocab, hidden] = shapeOf(tensors, `${p}embed_tokens.weight`, 2);
  const layers = countBlocks(tensors, `${p}layers.`);
  const l0 = `${p}layers.0`;
  const qWidth = shapeOf(tensors, `${l0}.self_attn.q_proj.weight`, 2)[0];
  const kWidth = shapeOf(tensors, `${l0}.self_attn.k_proj.weight`, 2)[0];
  const freqName = [`${l0}.self_attn.rotary_emb.inv_freq`, `${p}rotary_emb.inv_freq`].find((n) => tensors.has(n));
  const qNormName = `${l0}.self_attn.q_norm.weight`;
  const shown = freqName
    ? { headDim: 2 * shapeOf(tensors, freqName, 1)[0], tensor: freqName }
    : tensors.has(qNormName) ? { headDim: shapeOf(tensors, qNormName, 1)[0], tensor: qNormName } : undefined;
  const hc = resolveHeads('llama', [64, 128], qWidth, opts, shown);
  const kvHeads = kWidth / hc.headDim;
  if (!Number.isInteger(kvHeads) || hc.heads % kvHeads !== 0) {
    throw new ModelError('ShapeMismatch', `transformer: k_proj width ${kWidth} is not a whole number of key/value heads dividing ${hc.heads} heads of ${hc.headDim}`);
  }
  if (opts.kvHeads !== undefined && opts.kvHeads !== kvHeads) {
    throw new ModelError('ConfigInvalid', `model config: kvHeads ${opts.kvHeads} does not match k_proj's width ${kWidth} (${kvHeads} heads of ${hc.headDim})`);
  }
  if (hc.headDim % 2 !== 0) throw new ModelError('Unsupported', `transformer: rotary embeddings need an even head_dim, got ${hc.headDim}`);
  const theta = opts.ropeTheta ?? 10000;
  const invFreq = freqName ? { values: Float32Array.from(tensors.get(freqName)!.data), tensor: freqName } : undefined;
  return {
    ...FROM_SHAPES, modelType: 'llama', family: 'llama', objective: 'causal', layers, hidden, heads: hc.heads, kvHeads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${l0}.mlp.gate_proj.weight`, 2)[0], vocab, maxPositions: Number.MAX_SAFE_INTEGER,
    eps: opts.eps ?? 1e-5, act: 'silu', tied: !tensors.has('lm_head.weight') && !tensors.has('score.weight'),
    rope: { theta, type: 'default', factor: 1, ...(invFreq ? { invFreq } : {}) },
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

export const llama = transformerFamily('llama', 'Transformer (Llama naming)', ['llama', 'mistral', 'qwen2', 'qwen3'], llamaFromShapes);
