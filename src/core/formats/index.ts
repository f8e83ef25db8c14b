/**
 * Checkpoint formats besides safetensors, read without running anything from the file: PyTorch
 * `torch.save` (zip and legacy), sharded `pytorch_model.bin` through its index, Flax msgpack.
 */
export { CheckpointFormatError, type FormatErrorKind } from './errors';
export { detectFileFormat, detectFormat, openCheckpoint, openCheckpointFile, type DetectedFormat } from './open';
export { convertToSafetensors, type ConvertResult } from './convert';
