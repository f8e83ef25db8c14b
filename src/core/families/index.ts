/** Model families: ids, detection, spec inference and model configs (forward passes: src/engine/families/). */
export { FAMILY_IDS, isFamilyId, type CoreFamily, type FamilyId, type FamilyInference, type HfConfig, type FamilyName } from './family';
export { CORE_FAMILIES, coreFamily, detectFamily } from './registry';
export { readHfConfig } from './hfConfig';
export { ModelError, type ModelErrorKind } from './modelErrors';
export { readModelConfig, validateModelConfig, type Activation, type ModelConfig } from './modelConfig';
