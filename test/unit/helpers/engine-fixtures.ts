/**
 * Small MLP checkpoints for the engine tests, written with the core safetensors writer:
 * A random, B = A with its hidden units permuted (so alignment must recover the permutation
 * exactly and π(B) must equal A bit for bit), C = an independent random model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeFromFloat32, writeSafetensors } from '../../../src/core/safetensors';
import { mulberry32 } from '../../../src/core/matching/prng';
import type { StateTensor } from './stateDicts';

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Seeded uniform numbers in [-1, 1) (the project's mulberry32). */
export function seeded(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r() * 2 - 1;
}

export type Mlp = Map<string, { shape: number[]; data: Float32Array }>;

/** PyTorch-named Linear chain: layers.{i}.weight [out, in], layers.{i}.bias [out]. */
export function randomMlp(widths: readonly number[], seed: number): Mlp {
  const rnd = seeded(seed);
  const m: Mlp = new Map();
  for (let i = 0; i + 1 < widths.length; i++) {
    const [inp, out] = [widths[i], widths[i + 1]];
    m.set(`layers.${i}.weight`, { shape: [out, inp], data: Float32Array.from({ length: out * inp }, () => rnd() / Math.sqrt(inp)) });
    m.set(`layers.${i}.bias`, { shape: [out], data: Float32Array.from({ length: out }, () => rnd() * 0.1) });
  }
  return m;
}

/** A random permutation of 0..n-1 (Fisher-Yates). */
export function randomPerm(n: number, seed: number): Int32Array {
  const rnd = seeded(seed);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(((rnd() + 1) / 2) * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * The same function with hidden layer k's units reordered by perms[k]: unit j of the result is
 * unit perms[k][j] of the input (rows of layer k, bias k, and columns of layer k+1).
 */
export function permuteMlp(m: Mlp, perms: readonly Int32Array[]): Mlp {
  const out: Mlp = new Map([...m].map(([k, v]) => [k, { shape: v.shape, data: v.data.slice() }]));
  perms.forEach((p, k) => {
    // Read the current state (earlier steps permuted this layer's columns).
    const copy = (name: string): { shape: number[]; data: Float32Array } => ({ shape: out.get(name)!.shape, data: out.get(name)!.data.slice() });
    const w = copy(`layers.${k}.weight`);
    const b = copy(`layers.${k}.bias`);
    const next = copy(`layers.${k + 1}.weight`);
    const [rows, cols] = w.shape;
    const [nRows, nCols] = next.shape;
    const ow = out.get(`layers.${k}.weight`)!.data;
    const ob = out.get(`layers.${k}.bias`)!.data;
    const on = out.get(`layers.${k + 1}.weight`)!.data;
    for (let j = 0; j < rows; j++) {
      for (let c = 0; c < cols; c++) ow[j * cols + c] = w.data[p[j] * cols + c];
      ob[j] = b.data[p[j]];
    }
    for (let r = 0; r < nRows; r++) for (let j = 0; j < nCols; j++) on[r * nCols + j] = next.data[r * nCols + p[j]];
  });
  return out;
}

export async function writeMlp(file: string, m: Mlp, dtype = 'F32', extra: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {}): Promise<string> {
  const sources = [...m].map(([name, t]) => ({ name, dtype, shape: t.shape, read: async () => encodeFromFloat32(dtype, t.data) }));
  for (const [name, e] of Object.entries(extra)) sources.push({ name, dtype: e.dtype, shape: e.shape, read: async () => e.bytes });
  await writeSafetensors(file, sources, { metadata: { source: 'engine test' } });
  return file;
}

/** Writes a state dict (`stateDicts.ts`) as a float32 `.safetensors` file. */
export async function writeStateDict(file: string, tensors: readonly StateTensor[]): Promise<void> {
  await writeSafetensors(file, tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })));
}

/** A data set file of `n` examples of `features` uniform values in [0, 1) (x) and labels 0–9 (y), seeded. */
export async function writeRandomData(file: string, n: number, features: number, random: () => number): Promise<void> {
  const x = Float32Array.from({ length: n * features }, () => random());
  const y = new BigInt64Array(n).map(() => BigInt(Math.floor(random() * 10)));
  await writeSafetensors(file, [
    { name: 'x', dtype: 'F32', shape: [n, features], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
  ]);
}
