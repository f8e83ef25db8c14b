/** The model config belongs to the families in core; re-exported for the engine's imports. */
export { readModelConfig, validateModelConfig, type Activation, type ModelConfig } from '../../core/families/modelConfig';
