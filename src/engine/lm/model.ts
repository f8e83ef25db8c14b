/**
 * The LM forward pass for a checkpoint's family (config.json `model_type`): GPT-2, the Llama
 * family, or BERT. Weights are a name -> float32 map (a checkpoint read by
 * checkpoint.ts, or an interpolated / permuted copy of one).
 */
import type { TensorMap } from '../../core/checkpoint';
import { buildBert } from './bert';
import type { LmConfig } from './config';
import { buildGpt2 } from './gpt2';
import type { LmModel } from './layers';
import { buildLlama } from './llama';
import { buildMixtral } from './mixtral';

export type { LmModel } from './layers';

/** Builds the forward pass; `weights` names the weights in messages (default: the config's folder). */
export function buildLm(tensors: TensorMap, config: LmConfig, weights = config.file.replace(/config\.json$/, 'model.safetensors')): LmModel {
  switch (config.family) {
    case 'gpt2':
      return buildGpt2(tensors, config, weights);
    case 'llama':
      return buildLlama(tensors, config, weights);
    case 'mixtral':
      return buildMixtral(tensors, config, weights);
    case 'bert':
      return buildBert(tensors, config, weights);
  }
}
