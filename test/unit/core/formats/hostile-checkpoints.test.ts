/**
 * Hostile PyTorch and Flax files, written here: each is refused by `openCheckpoint` with one line
 * naming the file and the problem, without running anything and without allocating what the file
 * claims (array-buffer growth checked against a small bound).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { CheckpointFormatError, openCheckpoint } from '../../../../src/core/formats';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';
import { Ext, PickleBuilder, flaxArray, legacyTorch, msgpack, stateDictPickle, torchZip, zipArchive, type TensorSpec } from '../../helpers/torchFiles';

const FORMATS = path.join(__dirname, '..', '..', '..', 'fixtures', 'formats');
/** More than any refusal should allocate: the hostile files claim gigabytes. */
const MEMORY_BOUND = 64 * 1024 * 1024;

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-hostile-formats-');
});
after(() => tmp.remove());

const floats = (n: number): Uint8Array => new Uint8Array(Float32Array.from({ length: n }, (_, i) => i).buffer);
const tensor = (over: Partial<TensorSpec> = {}): TensorSpec => ({ name: 'w', key: '0', storage: 'FloatStorage', numel: 4, offset: 0, shape: [4], stride: [1], ...over });
const zipWithPickle = (pickle: Uint8Array, storages = new Map([['0', floats(4)]])): Uint8Array => torchZip('archive', pickle, storages);

/** Writes `bytes` as `name`, opens it, and checks the one-line refusal. */
async function refused(name: string, bytes: Uint8Array, pattern: RegExp, kind?: string): Promise<void> {
  const file = tmp.file(name);
  await writeFile(file, bytes);
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 1);
  try {
    await assert.rejects(openCheckpoint(file), (e: unknown) => {
      assert.ok(e instanceof CheckpointFormatError, `${name}: ${String(e)}`);
      assert.ok(e.message.startsWith(`${name}: `), e.message);
      assert.ok(!e.message.includes('\n'), e.message);
      assert.match(e.message, pattern);
      if (kind) assert.equal(e.kind, kind, e.message);
      return true;
    });
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  assert.ok(peak - before < MEMORY_BOUND, `${name}: array buffers grew by ${peak - before} bytes`);
}

describe('hostile pickles', () => {
  it('an unknown global is refused by name (builtins.eval, os.system by STACK_GLOBAL)', async () => {
    const evalGlobal = new PickleBuilder().proto().global('builtins', 'eval').str('1+1').op(0x85).reduce().stop().bytes();
    await refused('eval.pt', zipWithPickle(evalGlobal), /refused: the pickle names the global `builtins\.eval`/, 'Unsafe');
    const stackGlobal = new PickleBuilder().proto(4).str('os').str('system').op(0x93).stop().bytes();
    await refused('stack-global.pt', zipWithPickle(stackGlobal), /`os\.system`/, 'Unsafe');
  });

  it('REDUCE on anything not allowed: a storage class, a dtype, a tuple, OrderedDict with arguments', async () => {
    const onStorage = new PickleBuilder().proto().global('torch', 'FloatStorage').op(0x29).reduce().stop().bytes();
    await refused('reduce-storage.pt', zipWithPickle(onStorage), /calls a storage type/, 'Unsafe');
    const onDtype = new PickleBuilder().proto().global('torch', 'float32').op(0x29).reduce().stop().bytes();
    await refused('reduce-dtype.pt', zipWithPickle(onDtype), /calls a dtype/, 'Unsafe');
    const onTuple = new PickleBuilder().proto().op(0x29).op(0x29).reduce().stop().bytes();
    await refused('reduce-tuple.pt', zipWithPickle(onTuple), /calls a tuple/, 'Unsafe');
    const od = new PickleBuilder().proto().global('collections', 'OrderedDict').str('x').op(0x85).reduce().stop().bytes();
    await refused('reduce-od.pt', zipWithPickle(od), /`collections\.OrderedDict` with arguments/, 'Unsafe');
  });

  it('opcodes that build class instances (NEWOBJ, INST, OBJ) are refused', async () => {
    const newobj = new PickleBuilder().proto().global('collections', 'OrderedDict').op(0x29).op(0x81).stop().bytes();
    await refused('newobj.pt', zipWithPickle(newobj), /creates an object of a class/, 'Unsafe');
  });

  it('memo abuse: reading a slot never written', async () => {
    const bad = new PickleBuilder().proto().op(0x6a, 0xff, 0xff, 0xff, 0x7f).stop().bytes();
    await refused('memo.pt', zipWithPickle(bad), /reads memo slot 2147483647, which was never written/, 'Corrupt');
  });

  it('stack abuse: popping an empty stack, popping past a MARK, APPENDS with no MARK, STOP on nothing', async () => {
    await refused('pop.pt', zipWithPickle(new PickleBuilder().proto().op(0x30).stop().bytes()), /pops an empty stack/);
    await refused('past-mark.pt', zipWithPickle(new PickleBuilder().proto().op(0x5d).mark().op(0x30).stop().bytes()), /pops an empty stack/);
    await refused('appends.pt', zipWithPickle(new PickleBuilder().proto().op(0x5d).op(0x65).stop().bytes()), /no MARK/);
    await refused('stop.pt', zipWithPickle(new PickleBuilder().proto().stop().bytes()), /pops an empty stack/);
  });

  it('deep nesting is refused (lists in lists, tuples in tuples)', async () => {
    const lists = new PickleBuilder().proto();
    for (let i = 0; i < 5000; i++) lists.op(0x5d);
    for (let i = 0; i < 4999; i++) lists.op(0x61);
    await refused('deep-lists.pt', zipWithPickle(lists.stop().bytes()), /nested more than 200 deep/, 'Corrupt');
    const tuples = new PickleBuilder().proto().op(0x29);
    for (let i = 0; i < 5000; i++) tuples.op(0x85);
    await refused('deep-tuples.pt', zipWithPickle(tuples.stop().bytes()), /nested more than 200 deep/, 'Corrupt');
  });

  it('a truncated pickle, zip and legacy stream', async () => {
    const pickle = stateDictPickle([tensor()]);
    await refused('cut-pickle.pt', zipWithPickle(pickle.subarray(0, pickle.length - 20)), /ends at offset \d+ before its STOP opcode/, 'Corrupt');
    const zip = await readFile(path.join(FORMATS, 'mlp.pt'));
    await refused('cut-zip.pt', zip.subarray(0, Math.floor(zip.length / 2)), /no end of central directory record/, 'Corrupt');
    const legacy = await readFile(path.join(FORMATS, 'mlp_legacy.pt'));
    await refused('cut-legacy-storages.pt', legacy.subarray(0, legacy.length - 100), /more than the \d+-byte file holds|past the end/, 'Corrupt');
    await refused('cut-legacy-pickle.pt', legacy.subarray(0, 400), /before its STOP opcode/, 'Corrupt');
  });

  it('a storage larger than the file (zip and legacy), and a view past its storage', async () => {
    const big = tensor({ numel: 2 ** 40, shape: [2 ** 20, 2 ** 20], stride: [2 ** 20, 1] });
    await refused('big-storage.pt', zipWithPickle(stateDictPickle([big])), /storage `0` declares 4398046511104 bytes but the archive holds 16/, 'Corrupt');
    const legacy = legacyTorch(stateDictPickle([tensor()]), new Map([['0', { bytes: floats(4), elementBytes: 4 }]]), new Map([['0', 2n ** 40n]]));
    await refused('big-legacy.pt', legacy, /storage `0` declares 1099511627776 elements, more than the \d+-byte file holds/, 'Corrupt');
    const past = tensor({ offset: 2, shape: [4] });
    await refused('view-past.pt', zipWithPickle(stateDictPickle([past])), /tensor `w` reads past the end of its storage `0` \(16 bytes\)/, 'Corrupt');
  });
});

describe('hostile archives', () => {
  it('a zip bomb: a deflated data.pkl inflating past what it declares, and one claiming more than deflate can hold', async () => {
    const pickle = new PickleBuilder().proto().op(0x29);
    const padding = new Uint8Array(50_000_000).fill(0x32); // DUP x 50 million: compresses ~1000:1
    const body = Buffer.concat([Buffer.from(pickle.bytes()), Buffer.from(padding), Buffer.from([0x2e])]);
    await refused('bomb.pt', zipArchive([{ name: 'archive/data.pkl', data: body, deflate: true, claimedSize: 1000 }]), /inflates past its declared 1000 bytes \(a decompression bomb\?\)/, 'Corrupt');
    await refused('bomb-claim.pt', zipArchive([{ name: 'archive/data.pkl', data: Buffer.from('x'), deflate: true, claimedSize: 2 ** 31 }]), /more than its \d+ compressed bytes can hold/, 'Corrupt');
  });

  it('member names that leave the archive are refused before anything is read', async () => {
    const pickle = stateDictPickle([tensor()]);
    await refused('dotdot.pt', zipArchive([{ name: 'archive/data.pkl', data: pickle }, { name: 'archive/../../etc/x', data: floats(4) }]), /member name `archive\/\.\.\/\.\.\/etc\/x` leaves the archive/, 'Corrupt');
    await refused('absolute.pt', zipArchive([{ name: '/archive/data.pkl', data: pickle }]), /leaves the archive/, 'Corrupt');
  });

  it('a storage the pickle names but the archive lacks', async () => {
    await refused('missing.pt', zipWithPickle(stateDictPickle([tensor({ key: '7' })])), /storage `7` is named by the pickle but not in the archive/, 'Corrupt');
  });
});

describe('hostile Flax msgpack', () => {
  const good = (): Buffer => msgpack({ params: { Dense_0: { kernel: flaxArray([2, 2], 'float32', floats(4)) } } });

  it('truncated', async () => {
    const b = good();
    await refused('cut.msgpack', b.subarray(0, b.length - 3), /truncated|past the end/, 'Corrupt');
  });

  it('a container claiming more entries than the file holds, and deep nesting', async () => {
    await refused('count.msgpack', Buffer.from([0x81, 0xa1, 0x61, 0xdd, 0x00, 0x0f, 0x42, 0x40]), /a container of 1000000 entries cannot fit/, 'Corrupt');
    const deep = Buffer.concat([Buffer.alloc(0), ...Array.from({ length: 500 }, () => Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0xc0])]);
    await refused('deep.msgpack', deep, /nested more than 100 deep/, 'Corrupt');
  });

  it('an array whose bytes do not match its shape, and an ext whose payload is not (shape, dtype, bytes)', async () => {
    await refused('short.msgpack', msgpack({ Dense_0: { kernel: flaxArray([1000, 1000], 'float32', floats(4)) } }), /`Dense_0\/kernel` is float32\[1000, 1000\] but holds 16 bytes/, 'Corrupt');
    await refused('ext.msgpack', msgpack({ Dense_0: { kernel: new Ext(1, msgpack('not an array')) } }), /ext type 1 does not hold/, 'Corrupt');
    await refused('dtype.msgpack', msgpack({ Dense_0: { kernel: flaxArray([1], 'object', floats(1)) } }), /dtype `object`, not read/, 'Unsupported');
  });
});
