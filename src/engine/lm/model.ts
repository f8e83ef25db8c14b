/**
 * The LM forward pass of a checkpoint's family (config.json `model_type`, or the family its
 * weights' naming shows): the family's engine module gives it (`EngineFamily.lm`). Weights are a
 * name -> float32 map (a checkpoint read by checkpoint.ts, or an interpolated / permuted copy).
 */
import type { TensorMap } from '../../core/checkpoint';
import { lmArchitecture } from '../families/registry';
import type { LmConfig } from './config';
import type { LmModel } from './layers';

export type { LmModel } from './layers';

/** Builds the forward pass; `weights` names the weights in messages (default: the config's folder). */
export function buildLm(tensors: TensorMap, config: LmConfig, weights = config.file.replace(/config\.json$/, 'model.safetensors')): LmModel {
  return lmArchitecture(config.family).build(tensors, config, weights);
}
