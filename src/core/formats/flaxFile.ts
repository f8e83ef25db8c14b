/**
 * Flax checkpoints (`flax.serialization.msgpack_serialize`, `flax.training.checkpoints`, which
 * writes the same bytes to `checkpoint_<step>` with no extension): nested maps whose leaves are
 * arrays as msgpack ext type 1 holding `(shape, dtype name, C-order bytes)`. Names are the map
 * path joined with `/` (`Dense_0/kernel`), layouts are Flax's (Dense kernels [in, out], Conv HWIO).
 * A TrainState's `params` is taken and its `opt_state` ignored; a variables dict with more
 * collections than `params` (`batch_stats`) keeps each collection as the first name segment.
 * Reference: flax/serialization.py (`_ndarray_to_bytes`, `_MsgpackExtType`).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Checkpoint, TensorInfo } from '../checkpoint';
import { tensorSize } from '../safetensors/dtypes';
import { readFully } from '../safetensors/file-io';
import { CheckpointFormatError, quoted } from './errors';
import { LazyCheckpoint } from './lazyCheckpoint';
import { FileWindow, decodeMsgpack, type BlobRef, type MsgMap, type MsgValue } from './msgpack';

const NDARRAY_EXT = 1;

const FLAX_DTYPES: Readonly<Record<string, string>> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint64: 'U64',
  uint32: 'U32',
  uint16: 'U16',
  uint8: 'U8',
  bool: 'BOOL',
};

interface FlaxArray {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly data: BlobRef;
}

function isMap(v: MsgValue | undefined): v is MsgMap {
  return v instanceof Map;
}

function asArray(v: MsgValue): FlaxArray | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && v.kind === 'ext' ? (v.value as FlaxArray) : undefined;
}

function hasArrays(m: MsgMap, depth = 0): boolean {
  for (const v of m.values()) if (asArray(v) || (isMap(v) && depth < 50 && hasArrays(v, depth + 1))) return true;
  return false;
}

/** The weights' map and where it was: a TrainState's `params`, then a variables dict's `params` when it is the only collection. */
function weightsOf(root: MsgMap): { map: MsgMap; where: string } {
  const path: string[] = [];
  let map = root;
  const trainState = isMap(map.get('params')) && (map.has('opt_state') || map.has('step') || map.has('tx'));
  if (trainState) {
    map = map.get('params') as MsgMap;
    path.push('params');
  }
  const inner = map.get('params');
  if (isMap(inner) && [...map].every(([k, v]) => k === 'params' || !isMap(v) || !hasArrays(v))) {
    map = inner;
    path.push('params');
  }
  return { map, where: path.length === 0 ? 'the top level' : path.map((k) => `\`${k}\``).join(' > ') };
}

class FlaxCheckpoint extends LazyCheckpoint {
  readonly format = 'flax' as const;

  async readRaw(name: string): Promise<Uint8Array> {
    const { info, handle } = this.reading(name);
    const out = new Uint8Array(info.byteLength);
    await readFully(handle, out, info.dataOffsets[0], this.path);
    return out;
  }
}

/** Indexes a Flax msgpack file (payloads stay on disk) and keeps `handle` for tensor reads. */
export function openFlax(file: string, handle: FileHandle, fileSize: number): Checkpoint {
  let root: MsgValue;
  {
    const window = new FileWindow(handle.fd, fileSize, file);
    const corrupt = (detail: string): never => {
      throw new CheckpointFormatError('Corrupt', file, `msgpack array: ${detail}`);
    };
    root = decodeMsgpack(window, NDARRAY_EXT, (_w, _length, nested) => {
      const v = nested();
      if (!Array.isArray(v) || v.length !== 3) return corrupt('ext type 1 does not hold (shape, dtype, bytes)');
      const [shape, dtype, data] = v;
      if (!Array.isArray(shape) || !shape.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) return corrupt('shape is not a list of sizes');
      if (typeof dtype !== 'string') return corrupt('dtype is not a name');
      if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Map || data.kind !== 'blob' || data.extType !== undefined) return corrupt('data is not bytes');
      return { shape, dtype, data } satisfies FlaxArray;
    });
    if (window.pos !== window.size) throw new CheckpointFormatError('Corrupt', file, `msgpack: ${window.size - window.pos} bytes follow the value`);
  }
  if (!isMap(root)) throw new CheckpointFormatError('Unsupported', file, 'msgpack value is not a map of arrays: not a Flax checkpoint');
  const { map, where } = weightsOf(root);
  const tensors: TensorInfo[] = [];
  const walk = (m: MsgMap, prefix: string, depth: number): void => {
    for (const [k, v] of m) {
      const name = prefix ? `${prefix}/${k}` : k;
      const arr = asArray(v);
      if (arr) {
        const dtype = FLAX_DTYPES[arr.dtype];
        if (!dtype) throw new CheckpointFormatError('Unsupported', file, `array ${quoted(name)} has dtype ${quoted(arr.dtype)}, not read`);
        const size = tensorSize(dtype, arr.shape);
        if ('problem' in size || size.bytes !== arr.data.length) {
          throw new CheckpointFormatError('Corrupt', file, `array ${quoted(name)} is ${arr.dtype}[${arr.shape.join(', ')}] but holds ${arr.data.length} bytes`);
        }
        tensors.push({ name, dtype, shape: arr.shape, byteLength: size.bytes, dataOffsets: [arr.data.offset, arr.data.offset + arr.data.length], file });
      } else if (isMap(v) && depth < 50) walk(v, name, depth + 1);
    }
  };
  walk(map, '', 0);
  if (tensors.length === 0) throw new CheckpointFormatError('Unsupported', file, 'holds no arrays (no Flax params found)');
  return new FlaxCheckpoint(file, handle, tensors, where);
}
