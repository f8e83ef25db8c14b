/** Permutation specs: the file format, validation against checkpoints, and inference. */
export { SpecError, HAND_WRITTEN_SPEC_HINT, type SpecErrorKind } from './errors';
export { type TensorShape, naturalCompare, axesOfPerms, buildPermSpec } from './shapes';
export { type SpecFile, parseSpecFile, resolveSpec, checkCompatible, specToFile, skeletonSpecFile, formatSpecFile } from './specFile';
export { type InferredSpec, inferSpec } from './infer';
export { describeFamily, symmetryGroupLog10, log10Factorial } from './describe';
