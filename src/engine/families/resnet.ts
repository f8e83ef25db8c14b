/** torchvision ResNet forward pass (BasicBlock / Bottleneck; 7x7 stem + max pool, or 3x3 stem without). */
import type { EngineFamily } from './family';
import { buildResnet } from './resnetNet';

export const resnet: EngineFamily = { id: 'resnet', buildClassifier: (tensors, config) => buildResnet(tensors, config, 'resnet') };
