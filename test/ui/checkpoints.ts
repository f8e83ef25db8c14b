/**
 * Checkpoints the UI journeys put in their workspaces: PyTorch-named MLPs (`fc{i}.weight`
 * [out, in], `fc{i}.bias`) with seeded uniform (Kaiming-like) weights, and Hugging Face folders
 * that are a known permutation of a shared fixture (residual stream, MLPs, heads and the
 * dimensions inside them).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, Permutations } from '../../src/core/checkpoint';
import { checkpointSummary, openCheckpoint, writeSafetensors, type TensorSource } from '../../src/core/safetensors';
import { mulberry32 } from '../../src/core/matching/prng';
import { applyPermutations, randomPermutations } from '../../src/core/matching/permute';
import { readHfConfig } from '../../src/core/families/hfConfig';
import { inferSpec } from '../../src/core/permspec';

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

/** Files beside a Hugging Face model that the copy keeps. */
const HF_SIDE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/**
 * Writes to `dest` (created) a Hugging Face folder whose weights are those of the fixture folder
 * `src` under a seeded random element of its inferred symmetry group: B[i] = A[perm[i]] along
 * every permuted axis. Returns the permutations used.
 */
export async function writePermutedHf(src: string, dest: string, seed: number): Promise<Permutations> {
  mkdirSync(dest, { recursive: true });
  for (const f of HF_SIDE_FILES) if (existsSync(path.join(src, f))) copyFileSync(path.join(src, f), path.join(dest, f));
  return writePermuted(path.join(src, 'model.safetensors'), path.join(dest, 'model.safetensors'), seed);
}

/**
 * Writes to `destFile` the checkpoint `srcFile` under a seeded random element of its inferred
 * symmetry group (the same function, its hidden units reordered). Returns the permutations used.
 */
export async function writePermuted(srcFile: string, destFile: string, seed: number): Promise<Permutations> {
  const ckpt = await openCheckpoint(srcFile);
  try {
    const summary = checkpointSummary(ckpt);
    const spec = inferSpec(summary.tensors, readHfConfig(summary.path)).spec;
    const tensors = new Map<string, DenseTensor>();
    for (const t of summary.tensors) tensors.set(t.name, { shape: [...t.shape], data: await ckpt.readFloat32(t.name) });
    const perms = randomPermutations(spec, seed);
    const permuted = applyPermutations(spec, perms, tensors);
    await writeSafetensors(destFile, [...permuted].map(([name, t]) => f32(name, [...t.shape], t.data)), { metadata: { format: 'pt' } });
    return perms;
  } finally {
    await ckpt.close();
  }
}

/**
 * Writes to `destFile` a stand-in for a fine-tune of `srcFile`: every tensor copied, except that
 * each tensor named in `noise` gets seeded uniform noise of that size relative to its own RMS
 * (0.05: each weight moved by up to 5 % of the tensor's RMS · √3). Deterministic.
 */
export async function writeNudged(srcFile: string, destFile: string, noise: Readonly<Record<string, number>>, seed: number): Promise<void> {
  const rand = mulberry32(seed);
  const ckpt = await openCheckpoint(srcFile);
  try {
    const out: TensorSource[] = [];
    for (const t of checkpointSummary(ckpt).tensors) {
      const data = await ckpt.readFloat32(t.name);
      const scale = noise[t.name];
      if (scale !== undefined) {
        const rms = Math.sqrt(data.reduce((s, x) => s + x * x, 0) / Math.max(1, data.length));
        for (let i = 0; i < data.length; i++) data[i] += (rand() * 2 - 1) * Math.sqrt(3) * scale * rms;
      }
      out.push(f32(t.name, [...t.shape], data));
    }
    await writeSafetensors(destFile, out, { metadata: { format: 'pt' } });
  } finally {
    await ckpt.close();
  }
}
