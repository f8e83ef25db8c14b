/** torchvision ResNets (`conv1`, `bn1`, `layerK.M.*`, `downsample`, `fc`): BasicBlock and Bottleneck, 7x7 or 3x3 stem. */
import { inferResnet, resnetKind, resnetPrefix } from '../permspec/inferResnet';
import type { CoreFamily } from './family';

export const resnet: CoreFamily = {
  id: 'resnet',
  reportedAs: 'resnet',
  label: 'ResNet (torchvision naming)',
  // After resnet-cifar in the registry: every other `layerK.M.conv1` net.
  detect: (tensors) => resnetPrefix(tensors) !== null,
  infer: (tensors) => inferResnet(tensors, resnetPrefix(tensors) ?? ''),
  mismatchHint: 'a residual stream or shortcut the spec misses: every tensor reading or writing a stream needs the same permutation',
  configKeys: ['activation', 'inputShape', 'eps'],
};

export { resnetKind };
