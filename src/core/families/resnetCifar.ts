/** CIFAR ResNet ports such as ResNet-20 (`shortcut` naming, option-A shortcuts or a `linear` head). */
import { inferResnet, resnetKind, resnetPrefix } from '../permspec/inferResnet';
import type { CoreFamily } from './family';

export const resnetCifar: CoreFamily = {
  id: 'resnet-cifar',
  reportedAs: 'resnet-cifar',
  label: 'CIFAR ResNet',
  detect: (tensors) => resnetKind(tensors) === 'resnet-cifar',
  infer: (tensors) => inferResnet(tensors, resnetPrefix(tensors) ?? ''),
  mismatchHint: 'a residual stream or shortcut the spec misses: every tensor reading or writing a stream needs the same permutation',
  configKeys: ['activation', 'inputShape', 'eps'],
};
