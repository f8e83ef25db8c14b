/**
 * safetensors for Re-Basin: a strict reader (the reference library's validation rules, header only,
 * tensors on demand), sharded checkpoints, an atomic streaming writer and dtype conversions.
 */

export { SafetensorsError, type SafetensorsErrorKind } from './errors';
export { DTYPES, DTYPE_BITS, isKnownDtype, tensorSize } from './dtypes';
export { DECODABLE_DTYPES, ENCODABLE_DTYPES, decodeToFloat32, encodeFromFloat32, halfBits } from './codec';
export { MAX_HEADER_BYTES, parseHeader, parseSafetensorsBytes, readHeaderLength, type ParsedHeader } from './header';
export { openSafetensors, type SafetensorsFile } from './reader';
export { isShardIndexPath, openShardedCheckpoint, readShardIndex, type ShardIndex } from './sharded';
export {
  provenanceMetadata,
  writeSafetensors,
  type Provenance,
  type TensorSource,
  type WriteSafetensorsOptions,
} from './writer';
export { checkpointSummary, type CheckpointSummary, type TensorSummary } from './summary';
export { compareNames } from './names';
export { assertNotAnInput, assertOutputTarget } from './output-guard';
export { removeStaleTemps, tempNameFor } from './writer';
/** Opens a checkpoint of any supported format (safetensors, sharded, PyTorch, Flax): see src/core/formats. */
export { openCheckpoint } from '../formats/open';
