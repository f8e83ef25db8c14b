/**
 * Language models from Hugging Face folders: config.json, weights by name (single or sharded),
 * forward passes with logits (GPT-2, Llama family, BERT masked-LM), and their evaluation on
 * token data (loss, accuracy, perplexity), also at a point (1 - lambda) A + lambda B of a path.
 */
export { parseLmConfig, readLmConfig, type LmActivation, type LmConfig, type RopeConfig } from './config';
export { lmWeightsPath, loadLmCheckpoint, locateLmCheckpoint, readLmWeights, type LmCheckpointPaths, type LoadedLm } from './checkpoint';
export { buildLm, type LmModel } from './model';
export { DEFAULT_LM_BUDGET_BYTES, lmBytesPerSequence, lmModelBytes, lmParameterCount, planLmBatches, type LmBatchPlan } from './memoryPlan';
export {
  evaluateLm,
  evaluateLmAt,
  evaluateLmCheckpoint,
  evaluateLmWeights,
  prepareLmEvaluation,
  type LmCheckpointEvaluation,
  type LmEvaluateOptions,
  type LmEvaluationInput,
  type LmMetrics,
  type MaskedLmOptions,
} from './evaluate';
