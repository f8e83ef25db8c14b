/** MLP forward pass: Linear layers with the config's activation between them. */
import type { EngineFamily } from './family';
import { buildSequential } from './sequentialNet';

export const mlp: EngineFamily = { id: 'mlp', buildClassifier: (tensors, config) => buildSequential(tensors, config, 'mlp') };
