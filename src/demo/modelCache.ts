/**
 * The demo's trained-model cache in `<out>/models/`: one file per training recipe (widths,
 * epochs, seed, batch size, learning rate, data limit), so a rerun with the same flags skips
 * training. A cached file is reused only if it opens as safetensors and holds exactly the
 * tensors the recipe implies; anything else is retrained (the writer replaces it atomically).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../core/safetensors';

export interface TrainingRecipe {
  readonly widths: readonly number[];
  readonly epochs: number;
  readonly seed: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly limit?: number;
}

/** `mlp-784-512-512-512-10_e2_s0_b500_lr0.001[_n1000].safetensors` inside `<out>/models`. */
export function cachedModelPath(outDir: string, r: TrainingRecipe): string {
  const limit = r.limit !== undefined ? `_n${r.limit}` : '';
  return path.join(outDir, 'models', `mlp-${r.widths.join('-')}_e${r.epochs}_s${r.seed}_b${r.batchSize}_lr${r.learningRate}${limit}.safetensors`);
}

/** PyTorch names and shapes of a Linear chain: `layers.{i}.weight` [out, in], `layers.{i}.bias` [out]. */
export function expectedTensors(widths: readonly number[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let i = 0; i + 1 < widths.length; i++) {
    out.set(`layers.${i}.weight`, [widths[i + 1], widths[i]]);
    out.set(`layers.${i}.bias`, [widths[i + 1]]);
  }
  return out;
}

/** Why a cached file cannot be reused, or undefined when it can (missing file: 'missing'). */
export async function cacheProblem(file: string, widths: readonly number[]): Promise<string | undefined> {
  if (!existsSync(file)) return 'missing';
  let ck;
  try {
    ck = await openCheckpoint(file);
  } catch (e) {
    return e instanceof Error ? e.message.split('\n')[0] : String(e);
  }
  try {
    const want = expectedTensors(widths);
    if (ck.tensors.length !== want.size) return `${path.basename(file)}: has ${ck.tensors.length} tensors, expected ${want.size}`;
    for (const t of ck.tensors) {
      const shape = want.get(t.name);
      if (!shape) return `${path.basename(file)}: unexpected tensor \`${t.name}\``;
      if (t.dtype !== 'F32' || t.shape.join(',') !== shape.join(',')) {
        return `${path.basename(file)}: tensor \`${t.name}\` is ${t.dtype} [${t.shape.join(', ')}], expected F32 [${shape.join(', ')}]`;
      }
    }
    return undefined;
  } finally {
    await ck.close();
  }
}
