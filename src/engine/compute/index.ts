/** The engine's tfjs compute: forward passes, evaluation, training, and the data-driven aligners. */
export type { Model, ForwardOptions } from './model';
export { buildModel, loadModel, detectModelFamily, readTensors } from '../families/build';
export { readModelConfig, validateModelConfig, type ModelConfig, type Activation } from './modelConfig';
export { ModelError, type ModelErrorKind } from './modelErrors';
export { evaluateModel, toBatches, type Batches, type Metrics } from './evaluate';
export { resetBatchNorm } from './batchNormReset';
export { trainMlp, initMlp, type TrainOptions, type TrainedMlp } from './train';
export { checkEquivalence, equivalenceBatch, EQUIVALENCE_TOLERANCE, type EquivalenceBatch } from './equivalence';
export { checkPermutedEquivalence } from '../families/equivalence';
export { activationMatching, activationMatchingFromTensors, type ActivationMatchingResult } from './activationMatching';
export { steMatching, type SteOptions, type SteResult } from './ste';
export { loadPathEnds, type PathEnds } from './pathModels';
export { matMulFast } from './fastLinear';
