/**
 * Reading tensors as weight matching holds them (src/engine/loadTensors.ts `readHeld`): BF16 and
 * F16 stay 16-bit with their exact patterns, other dtypes come as float32, and NaN/Inf in a
 * 16-bit tensor is refused in one line naming file and tensor, or zeroed when allowed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { isHalf } from '../../../src/core/heldTensor';
import { loadHeldTensors, loadTensors, readHeld } from '../../../src/engine/loadTensors';
import { tmpDirFor } from '../helpers/tmp';

const NAN_BF16 = 0x7fc0;
const INF_F16 = 0x7c00;

function bytes16(values: readonly number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(values).buffer);
}

async function fixture(t: import('node:test').TestContext): Promise<string> {
  const dir = await tmpDirFor(t);
  const file = dir.file('held.safetensors');
  await writeSafetensors(file, [
    { name: 'bf', dtype: 'BF16', shape: [2, 2], read: async () => bytes16([0x3f80, 0xc000, 0x0001, 0x4049]) },
    { name: 'bf_nan', dtype: 'BF16', shape: [3], read: async () => bytes16([0x3f80, NAN_BF16, 0xff80]) },
    { name: 'f16_inf', dtype: 'F16', shape: [2], read: async () => bytes16([INF_F16, 0x3c00]) },
    { name: 'f32', dtype: 'F32', shape: [2], read: async () => new Uint8Array(Float32Array.of(1.5, -2).buffer) },
  ]);
  return file;
}

test('BF16 and F16 tensors are held as their stored patterns, F32 as float32', async (t) => {
  const ck = await openCheckpoint(await fixture(t));
  try {
    const held = await loadHeldTensors(ck, ['bf', 'f32'], {});
    const bf = held.get('bf')!;
    assert.ok(isHalf(bf) && bf.dtype === 'BF16');
    assert.deepEqual([...bf.bits], [0x3f80, 0xc000, 0x0001, 0x4049]);
    assert.deepEqual(bf.shape, [2, 2]);
    const f32 = held.get('f32')!;
    assert.ok(!isHalf(f32));
    assert.deepEqual([...f32.data], [1.5, -2]);
    // The float32 loader still decodes.
    const dense = await loadTensors(ck, ['bf'], {});
    assert.deepEqual([...dense.get('bf')!.data], [1, -2, 2 ** -133, 3.140625]);
  } finally {
    await ck.close();
  }
});

test('NaN/Inf in a 16-bit tensor is refused naming file and tensor, or zeroed (and recorded) when allowed', async (t) => {
  const ck = await openCheckpoint(await fixture(t));
  try {
    await assert.rejects(readHeld(ck, 'bf_nan', {}), (e: Error) => /held\.safetensors: tensor `bf_nan` holds 2 NaN\/Inf values; allow non-finite/.test(e.message));
    await assert.rejects(readHeld(ck, 'f16_inf', {}), /tensor `f16_inf` holds 1 NaN\/Inf value;/);
    const zeroed = new Set<string>();
    const bf = await readHeld(ck, 'bf_nan', { allowNonFinite: true, zeroNonFinite: zeroed });
    assert.ok(isHalf(bf));
    assert.deepEqual([...bf.bits], [0x3f80, 0, 0]);
    assert.deepEqual([...zeroed], ['bf_nan']);
    // Allowed without zeroing: the patterns are kept as stored.
    const kept = await readHeld(ck, 'f16_inf', { allowNonFinite: true });
    assert.ok(isHalf(kept));
    assert.deepEqual([...kept.bits], [INF_F16, 0x3c00]);
  } finally {
    await ck.close();
  }
});
