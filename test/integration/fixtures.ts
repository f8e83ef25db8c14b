/**
 * Small checkpoints and data written into the test workspace with the project's own writer:
 * MLPs (8 → 32 → 32 → 4, PyTorch Linear layout) from a seeded PRNG, a data set of x/y, and a
 * corrupt file. Shared by the extension-host suites.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeSafetensors, type TensorSource } from '../../src/core/safetensors';
import { mulberry32 } from '../../src/core/matching/prng';

export const WIDTHS = [8, 32, 32, 4] as const;

const seeded = mulberry32;

function f32(name: string, shape: number[], data: Float32Array): TensorSource {
  return { name, dtype: 'F32', shape, read: async () => new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Writes an MLP checkpoint with layers fc1..fc3 (He-uniform weights) and returns its path. */
export async function writeMlp(file: string, seed: number, widths: readonly number[] = WIDTHS): Promise<string> {
  const rand = seeded(seed);
  const tensors: TensorSource[] = [];
  for (let i = 1; i < widths.length; i++) {
    const inp = widths[i - 1];
    const out = widths[i];
    const bound = Math.sqrt(6 / inp);
    const w = new Float32Array(out * inp).map(() => (rand() * 2 - 1) * bound);
    const b = new Float32Array(out).map(() => (rand() * 2 - 1) * 0.1);
    tensors.push(f32(`fc${i}.weight`, [out, inp], w), f32(`fc${i}.bias`, [out], b));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await writeSafetensors(file, tensors, { metadata: { format: 'pt' } });
  return file;
}

/** A classification data set the MLP can run on: x [n, 8] float32, y [n] integer labels as float32. */
export async function writeData(file: string, n = 64, seed = 7): Promise<string> {
  const rand = seeded(seed);
  const x = new Float32Array(n * WIDTHS[0]).map(() => rand() * 2 - 1);
  const y = new Float32Array(n).map((_, i) => i % WIDTHS[WIDTHS.length - 1]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await writeSafetensors(file, [f32('x', [n, WIDTHS[0]], x), f32('y', [n], y)]);
  return file;
}

/** A file with a safetensors extension whose header length points past its end. */
export function writeCorrupt(file: string): string {
  const bytes = Buffer.alloc(16);
  bytes.writeBigUInt64LE(1000n, 0);
  bytes.write('{"a":', 8);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.env.REBASIN_TEST_WORKSPACE;
  if (!folder) throw new Error('integration tests need a workspace folder');
  return folder;
}

export function inWorkspace(...parts: string[]): string {
  return path.join(workspaceDir(), ...parts);
}

/** Resolves with the first event value that satisfies `accept`, or rejects after `ms`. */
export function nextEvent<T>(event: vscode.Event<T>, accept: (v: T) => boolean, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const sub = event((v) => {
      if (!accept(v)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(v);
    });
  });
}


/**
 * A Hugging Face GPT-2 folder (config.json + model.safetensors, tied embeddings) with seeded
 * random weights: 1 block, width 16 (or `d`), 2 heads (or `heads`), vocabulary 20, 8 positions.
 * `config: false` leaves config.json out (a bare model.safetensors in a folder). Returns the weights file.
 */
export async function writeGpt2(dir: string, seed: number, o: { d?: number; heads?: number; config?: boolean } = {}): Promise<string> {
  const { randomGpt2 } = await import('../unit/helpers/lmReference');
  const d = o.d ?? 16;
  const w = randomGpt2({ layers: 1, d, vocab: 20, positions: 8, lmHead: false, seed });
  fs.mkdirSync(dir, { recursive: true });
  const config = { model_type: 'gpt2', activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_embd: d, n_head: o.heads ?? 2, n_layer: 1, n_positions: 8, vocab_size: 20, tie_word_embeddings: true };
  if (o.config !== false) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const file = path.join(dir, 'model.safetensors');
  await writeSafetensors(file, [...w].map(([name, t]) => f32(name, [...t.shape], t.data)), { metadata: { format: 'pt' } });
  return file;
}

/** Token ids [n, 8] below 20 as an int32 .npy file (for the GPT-2 above). */
export function writeTokenIds(file: string, n = 6, seed = 3): string {
  const rand = seeded(seed);
  const t = 8;
  const ids = Int32Array.from({ length: n * t }, () => Math.floor(rand() * 20));
  let header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${n}, ${t}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(ids.buffer)]));
  return file;
}
