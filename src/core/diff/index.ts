/** Checkpoint diff: per-tensor, per-layer and total distances of B (and π(B)) from A. */
export { diffCheckpoints, type CheckpointDiff, type DiffFiguresSet, type DiffOptions, type GroupDiff, type Mismatch, type TensorDiff } from './diff';
export { layerGroupOf } from './layers';
export { addPairs, emptySums, figuresOf, type DiffFigures, type PairSums } from './sums';
export { PICTURE_BINS, PICTURE_MAX_SIDE, tensorPicture, type Histogram, type PictureOptions, type TensorPicture } from './tensorPicture';
