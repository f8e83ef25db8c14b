/**
 * The allow-list that turns a `torch.save` pickle into data: the globals a state dict names
 * (tensor rebuild functions, storage classes, dtypes, `OrderedDict`, `torch.Size`) become inert
 * markers, and REDUCE builds a `TorchTensorRef` (where the tensor's elements are) instead of
 * calling anything. Any other global, and REDUCE or BUILD on anything else, is refused with a
 * line naming the file and the global. Reference: torch/serialization.py (`_load`,
 * `persistent_load`), torch/_utils.py (`_rebuild_tensor_v2`).
 */
import { CheckpointFormatError, quoted } from './errors';
import { PickleDict, PickleGlobal, PickleTuple, describe, type PickleHost, type PickleObject, type PickleValue } from './pickle';

/** Storage classes by name, with the safetensors dtype of their elements. */
const STORAGE_DTYPES: Readonly<Record<string, string>> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
};

/** torch dtypes (by attribute name) as safetensors dtypes. */
const TORCH_DTYPES: Readonly<Record<string, string>> = {
  float32: 'F32',
  float: 'F32',
  float64: 'F64',
  double: 'F64',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  bool: 'BOOL',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
};

export const ELEMENT_BYTES: Readonly<Record<string, number>> = {
  F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

class Callable implements PickleObject {
  readonly kind = 'callable';
  constructor(readonly qualified: string) {}
}

class StorageType implements PickleObject {
  readonly kind = 'storage type';
  constructor(readonly dtype: string) {}
}

class DtypeRef implements PickleObject {
  readonly kind = 'dtype';
  constructor(readonly dtype: string) {}
}

/** A storage named by a persistent id: `key` locates its bytes in the file. */
export class StorageRef implements PickleObject {
  readonly kind = 'storage';
  constructor(
    readonly key: string,
    readonly dtype: string,
    /** Elements, as the pickle declares them (checked against the bytes on disk). */
    readonly numel: number,
  ) {}
}

/** A tensor as `_rebuild_tensor_v2` would make it: a strided view of a storage. */
export class TorchTensorRef implements PickleObject {
  readonly kind = 'tensor';
  constructor(
    readonly storage: StorageRef,
    readonly dtype: string,
    /** In elements. */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

const CALLABLES = new Set([
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  'torch.Size',
  '_codecs.encode',
]);

function allowedGlobal(module: string, name: string): PickleValue | undefined {
  const q = `${module}.${name}`;
  if (CALLABLES.has(q)) return new Callable(q);
  if ((module === 'torch' || module === 'torch.storage') && Object.hasOwn(STORAGE_DTYPES, name)) return new StorageType(STORAGE_DTYPES[name]);
  if (module === 'torch' && Object.hasOwn(TORCH_DTYPES, name)) return new DtypeRef(TORCH_DTYPES[name]);
  return undefined;
}

function nonNegativeInt(v: PickleValue): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function intTuple(v: PickleValue): number[] | undefined {
  if (!(v instanceof PickleTuple)) return undefined;
  const out: number[] = [];
  for (const x of v.items) {
    const n = nonNegativeInt(x);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

/**
 * The host for one file: refuses in one line naming `file` and what it asked for. Every storage
 * the pickle names is recorded in `storages` (the legacy format needs them all to find its data).
 */
export function torchPickleHost(file: string, what: string, storages?: Map<string, StorageRef>): PickleHost {
  const refuse = (detail: string): never => {
    throw new CheckpointFormatError('Unsafe', file, `refused: ${detail}, which is not on the allow-list of a state dict (nothing was run)`);
  };
  const corrupt = (detail: string): never => {
    throw new CheckpointFormatError('Corrupt', file, `${what}: ${detail}`);
  };
  const tensor = (fn: string, args: readonly PickleValue[], dtypeArg?: PickleValue): TorchTensorRef => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof StorageRef)) return corrupt(`${fn} is given ${describe(storage ?? null)}, not a storage`);
    const o = nonNegativeInt(offset ?? null);
    const shape = intTuple(size ?? null);
    const strides = intTuple(stride ?? null);
    if (o === undefined || !shape || !strides || shape.length !== strides.length) return corrupt(`${fn} is given a malformed offset, size or stride`);
    let dtype = storage.dtype;
    if (dtypeArg !== undefined) {
      if (!(dtypeArg instanceof DtypeRef)) return corrupt(`${fn} is given ${describe(dtypeArg)}, not a dtype`);
      dtype = dtypeArg.dtype;
    }
    return new TorchTensorRef(storage, dtype, o, shape, strides);
  };
  return {
    global(module, name) {
      const v = allowedGlobal(module, name);
      return v ?? refuse(`the ${what} names the global ${quoted(`${module}.${name}`)}`);
    },
    reduce(callable, args) {
      if (!(callable instanceof Callable)) {
        return refuse(`the ${what} calls ${callable instanceof PickleGlobal ? quoted(callable.qualified) : describe(callable)}`);
      }
      const a = args.items;
      switch (callable.qualified) {
        case 'torch._utils._rebuild_tensor_v2':
          return tensor('_rebuild_tensor_v2', a);
        case 'torch._utils._rebuild_tensor_v3':
          return tensor('_rebuild_tensor_v3', a, a[6] ?? null);
        case 'torch._utils._rebuild_parameter':
        case 'torch._utils._rebuild_parameter_with_state':
          return a[0] instanceof TorchTensorRef ? a[0] : corrupt(`${callable.qualified} is given ${describe(a[0] ?? null)}, not a tensor`);
        case 'collections.OrderedDict':
          if (a.length === 0) return new PickleDict();
          return refuse(`the ${what} calls \`collections.OrderedDict\` with arguments`);
        case 'torch.Size':
          return a.length === 1 && a[0] instanceof PickleTuple ? a[0] : corrupt('torch.Size is given something other than a tuple');
        case '_codecs.encode':
          if (typeof a[0] === 'string' && (a[1] === 'latin1' || a[1] === 'latin-1')) return Uint8Array.from(a[0], (c) => c.charCodeAt(0) & 0xff);
          return refuse(`the ${what} calls \`_codecs.encode\` with an encoding other than latin1`);
        default:
          return refuse(`the ${what} calls ${quoted(callable.qualified)}`);
      }
    },
    build(obj, state) {
      // An OrderedDict's `_metadata` attribute or a tensor's hooks: attributes only, ignored.
      if (obj instanceof PickleDict || obj instanceof TorchTensorRef) return obj;
      void state;
      return refuse(`the ${what} sets the state of ${describe(obj)}`);
    },
    persistentLoad(pid) {
      if (!(pid instanceof PickleTuple) || pid.items[0] !== 'storage') return corrupt(`persistent id ${describe(pid)} is not a storage`);
      const [, type, key, , numel, view] = pid.items;
      if (!(type instanceof StorageType)) return corrupt(`storage has type ${describe(type ?? null)}, not a storage class`);
      if (typeof key !== 'string') return corrupt('storage key is not a string');
      const n = nonNegativeInt(numel ?? null);
      if (n === undefined) return corrupt(`storage \`${key}\` has a malformed size`);
      if (view !== undefined && view !== null) {
        throw new CheckpointFormatError('Unsupported', file, `storage \`${key}\` is a view of another storage (torch before 0.4): not read`);
      }
      const known = storages?.get(key);
      if (known && (known.dtype !== type.dtype || known.numel !== n)) return corrupt(`storage \`${key}\` is named twice with different types or sizes`);
      const ref = known ?? new StorageRef(key, type.dtype, n);
      storages?.set(key, ref);
      return ref;
    },
  };
}
