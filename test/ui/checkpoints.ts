/**
 * Checkpoints the UI journeys put in their workspaces: PyTorch-named MLPs (`fc{i}.weight`
 * [out, in], `fc{i}.bias`) with seeded uniform (Kaiming-like) weights.
 */
import { writeSafetensors, type TensorSource } from '../../src/core/safetensors';
import { mulberry32 } from '../../src/core/matching/prng';

export const SMALL_MLP: readonly number[] = [8, 32, 32, 4];

export function f32(name: string, shape: number[], data: Float32Array): TensorSource {
  return { name, dtype: 'F32', shape, read: async () => new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export async function writeMlp(file: string, seed: number, widths: readonly number[] = SMALL_MLP): Promise<void> {
  const rand = mulberry32(seed);
  const tensors: TensorSource[] = [];
  for (let i = 1; i < widths.length; i++) {
    const [inp, out] = [widths[i - 1], widths[i]];
    const bound = Math.sqrt(6 / inp);
    tensors.push(f32(`fc${i}.weight`, [out, inp], new Float32Array(out * inp).map(() => (rand() * 2 - 1) * bound)));
    tensors.push(f32(`fc${i}.bias`, [out], new Float32Array(out).map(() => (rand() * 2 - 1) * 0.1)));
  }
  await writeSafetensors(file, tensors);
}
