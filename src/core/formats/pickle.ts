/**
 * A pickle reader that executes nothing: the opcodes a PyTorch state dict uses (protocols 2 to 5)
 * build plain data, and the three that would run code in Python (a global, REDUCE and BUILD) are
 * handed to a `PickleHost` that allows a short list of known names as inert values and refuses
 * everything else. Opcodes that only exist to run code (INST, OBJ, NEWOBJ, EXT*) are refused.
 * Reference: CPython Lib/pickletools.py (opcode table) and Lib/pickle.py (`_Unpickler`).
 *
 * Bounds: the stack, the memo and nesting depth are capped, every length is checked against the
 * bytes left, and each opcode consumes at least one byte, so reading is linear in the input.
 */
import { CheckpointFormatError, quoted } from './errors';

/** A value the file's own code would have built, held as data (torch's types are the host's). */
export interface PickleObject {
  readonly kind: string;
}

export type PickleValue = null | boolean | number | bigint | string | Uint8Array | PickleObject;

export class PickleList implements PickleObject {
  readonly kind = 'list';
  depth = 1;
  constructor(readonly items: PickleValue[]) {}
}

export class PickleTuple implements PickleObject {
  readonly kind = 'tuple';
  readonly depth: number;
  constructor(readonly items: readonly PickleValue[]) {
    let d = 0;
    for (const item of items) d = Math.max(d, depthOf(item));
    this.depth = d + 1;
  }
}

export class PickleDict implements PickleObject {
  readonly kind = 'dict';
  depth = 1;
  readonly entries = new Map<unknown, PickleValue>();
}

/** A `module.name` global, as named by the file; only the host decides what it may be. */
export class PickleGlobal implements PickleObject {
  readonly kind = 'global';
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What the format around the pickle allows; every method throws to refuse. */
export interface PickleHost {
  /** The value a global stands for (e.g. an inert marker for `torch.FloatStorage`). */
  global(module: string, name: string): PickleValue;
  /** `callable(*args)` for an allowed callable. */
  reduce(callable: PickleValue, args: PickleTuple): PickleValue;
  /** `obj.__setstate__(state)`; returns the object to leave on the stack. */
  build(obj: PickleValue, state: PickleValue): PickleValue;
  /** The object a persistent id names (torch: a storage). */
  persistentLoad(pid: PickleValue): PickleValue;
}

export const PICKLE_LIMITS = {
  stack: 1 << 22,
  memo: 1 << 22,
  /** Containers nested deeper than this are refused (a state dict needs a handful). */
  depth: 200,
  /** Longest GLOBAL line. */
  globalName: 512,
} as const;

export function depthOf(v: PickleValue): number {
  return v instanceof PickleList || v instanceof PickleTuple || v instanceof PickleDict ? v.depth : 0;
}

/** Thrown when the input ends before STOP; the legacy reader retries with a longer window. */
export class PickleTruncated extends CheckpointFormatError {}

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

/** Reads one pickle from `bytes[start..]`; returns its value and the offset just past STOP. */
export function readPickle(bytes: Uint8Array, host: PickleHost, file: string, start = 0, what = 'pickle'): { value: PickleValue; end: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = start;
  let opAt = start;

  const fail = (detail: string): never => {
    throw new CheckpointFormatError('Corrupt', file, `${what}: ${detail} (opcode at offset ${opAt})`);
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) throw new PickleTruncated('Corrupt', file, `${what} ends at offset ${bytes.length} before its STOP opcode (truncated?)`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => bytes[need(1)];
  const u16 = (): number => dv.getUint16(need(2), true);
  const u32 = (): number => dv.getUint32(need(4), true);
  const u64 = (): number => {
    const v = dv.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const slice = (n: number): Uint8Array => bytes.subarray(need(n), pos);
  const push = (v: PickleValue): void => {
    if (stack.length >= PICKLE_LIMITS.stack) fail(`stack holds more than ${PICKLE_LIMITS.stack} items`);
    if (depthOf(v) > PICKLE_LIMITS.depth) fail(`containers nested more than ${PICKLE_LIMITS.depth} deep`);
    stack.push(v);
  };
  const pop = (): PickleValue => {
    const v = stack.length > (marks.at(-1) ?? 0) ? stack.pop() : undefined;
    if (v === undefined || v === MARK) return fail('pops an empty stack');
    return v;
  };
  const top = (): PickleValue => {
    const v = stack.length > (marks.at(-1) ?? 0) ? stack[stack.length - 1] : undefined;
    if (v === undefined || v === MARK) return fail('reads an empty stack');
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) return fail('has no MARK to pop to');
    const items = stack.splice(m) as PickleValue[];
    return items;
  };
  const memoPut = (index: number): void => {
    if (memo.size >= PICKLE_LIMITS.memo && !memo.has(index)) fail(`memo holds more than ${PICKLE_LIMITS.memo} items`);
    memo.set(index, top());
  };
  const memoGet = (index: number): void => {
    const v = memo.get(index);
    if (v === undefined) fail(`reads memo slot ${index}, which was never written`);
    else push(v);
  };
  const grow = (container: PickleList | PickleDict, child: PickleValue): void => {
    const d = depthOf(child) + 1;
    if (d > container.depth) container.depth = d;
    if (container.depth > PICKLE_LIMITS.depth) fail(`containers nested more than ${PICKLE_LIMITS.depth} deep`);
  };
  const setItems = (dict: PickleValue, items: readonly PickleValue[]): void => {
    if (!(dict instanceof PickleDict)) return fail(`sets items on ${describe(dict)}, not a dict`);
    if (items.length % 2 !== 0) fail('sets a key without a value');
    for (let i = 0; i < items.length; i += 2) {
      // Keys by value for strings and numbers, by identity otherwise (a state dict's keys are strings).
      dict.entries.set(items[i], items[i + 1]);
      grow(dict, items[i + 1]);
    }
  };
  const appendItems = (list: PickleValue, items: readonly PickleValue[]): void => {
    if (!(list instanceof PickleList)) return fail(`appends to ${describe(list)}, not a list`);
    for (const item of items) {
      list.items.push(item);
      grow(list, item);
    }
  };
  const int = (n: number | bigint): PickleValue => (typeof n === 'bigint' && n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);
  const long = (n: number): PickleValue => {
    if (n > 64) fail(`integer of ${n} bytes is too long`);
    const b = slice(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return int(v);
  };
  const globalLine = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > PICKLE_LIMITS.globalName) {
      if (end < 0 && bytes.length - pos <= PICKLE_LIMITS.globalName) need(bytes.length - pos + 1);
      fail('has a global name that is too long or unterminated');
    }
    const text = utf8.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('uses a pickle protocol above 5');
        break;
      case 0x95: // FRAME: framing is advisory; the opcodes follow inline
        u64();
        break;
      case 0x2e: {
        // STOP
        const value = pop();
        return { value, end: pos };
      }
      case 0x28: // MARK
        if (marks.length >= PICKLE_LIMITS.stack) fail('has too many MARKs');
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(dv.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(long(u8()));
        break;
      case 0x8b: // LONG4
        push(long(u32()));
        break;
      case 0x47: // BINFLOAT (big-endian)
        push(dv.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        push(utf8.decode(slice(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8.decode(slice(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8.decode(slice(u64())));
        break;
      case 0x54: // BINSTRING (protocol 1 str, read as latin-1 text)
        push(latin1.decode(slice(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(slice(u8())));
        break;
      case 0x42: // BINBYTES
        push(slice(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(slice(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(slice(u64()).slice());
        break;
      case 0x5d: // EMPTY_LIST
        push(new PickleList([]));
        break;
      case 0x6c: {
        // LIST
        const list = new PickleList([]);
        appendItems(list, popMark());
        push(list);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        appendItems(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        push(new PickleTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PickleTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PickleTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PickleTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PickleTuple([pop(), b, c]));
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PickleDict());
        break;
      case 0x64: {
        // DICT
        const dict = new PickleDict();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(u32());
        break;
      case 0x63: {
        // GLOBAL
        const module = globalLine();
        push(host.global(module, globalLine()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') return fail('STACK_GLOBAL needs two strings');
        push(host.global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        if (!(args instanceof PickleTuple)) return fail(`calls ${describe(callable)} with ${describe(args)}, not a tuple`);
        push(host.reduce(callable, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        push(host.build(pop(), state));
        break;
      }
      case 0x51: // BINPERSID
        push(host.persistentLoad(pop()));
        break;
      case 0x81: // NEWOBJ
      case 0x92: // NEWOBJ_EX
      case 0x69: // INST
      case 0x6f: // OBJ
        throw new CheckpointFormatError('Unsafe', file, `refused: the ${what} creates an object of a class (opcode 0x${op.toString(16)} at offset ${opAt}); a state dict never does, and nothing was run`);
      default:
        throw new CheckpointFormatError('Unsupported', file, `${what}: opcode 0x${op.toString(16).padStart(2, '0')} at offset ${opAt} is not one a state dict uses`);
    }
  }
}

/** A value in a few words, for messages. */
export function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (typeof v === 'string') return `the string ${quoted(v, 40)}`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `the value ${String(v)}`;
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PickleGlobal) return quoted(v.qualified);
  return `a ${v.kind}`;
}
