/** VGG-style forward pass: conv [+BN] + activation [+ max pool per layout], then Linear layers. */
import type { EngineFamily } from './family';
import { buildSequential } from './sequentialNet';

export const vgg: EngineFamily = { id: 'vgg', buildClassifier: (tensors, config) => buildSequential(tensors, config, 'vgg') };
