/** CIFAR ResNet forward pass (3x3 stem, option-A or conv shortcuts). */
import type { EngineFamily } from './family';
import { buildResnet } from './resnetNet';

export const resnetCifar: EngineFamily = { id: 'resnet-cifar', buildClassifier: (tensors, config) => buildResnet(tensors, config, 'resnet-cifar') };
