/**
 * Where a Hugging Face checkpoint's parts are, and its weights read by name. A user may point at
 * the folder `save_pretrained` wrote, at its `model.safetensors`, or at its
 * `model.safetensors.index.json` (sharded); `config.json` and `tokenizer.json` sit beside them.
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { openCheckpoint } from '../../core/safetensors';
import { stackExperts } from '../../core/moe/expertStack';
import { ModelError } from '../../core/families/modelErrors';
import { readLmConfig, type LmConfig } from './config';

export interface LmCheckpointPaths {
  /** The `.safetensors` file or the `*.safetensors.index.json` of a sharded checkpoint. */
  readonly weights: string;
  readonly config: string;
  /** `tokenizer.json` beside the weights, when there is one. */
  readonly tokenizer?: string;
}

/** Finds the weights, config.json and tokenizer.json of a folder, weights file or shard index. */
export function locateLmCheckpoint(p: string): LmCheckpointPaths {
  if (!existsSync(p)) throw new ModelError('ConfigInvalid', `${p}: checkpoint does not exist`, p);
  let weights: string;
  if (statSync(p).isDirectory()) {
    const candidates = ['model.safetensors', 'model.safetensors.index.json'].map((f) => path.join(p, f));
    const found = candidates.find((f) => existsSync(f));
    if (!found) throw new ModelError('ConfigInvalid', `${p}: folder has neither model.safetensors nor model.safetensors.index.json`, p);
    weights = found;
  } else {
    weights = p;
  }
  const dir = path.dirname(weights);
  const tokenizer = path.join(dir, 'tokenizer.json');
  return { weights, config: path.join(dir, 'config.json'), ...(existsSync(tokenizer) ? { tokenizer } : {}) };
}

/**
 * Buffers some files carry that are not parameters: GPT-2's causal-mask `attn.bias` /
 * `attn.masked_bias`, rotary `inv_freq`, BERT's `position_ids`. They are not read.
 */
const BUFFER = /(\.attn\.(masked_)?bias|\.rotary_emb\.inv_freq|\.position_ids)$/;

/**
 * Every parameter of the checkpoint decoded to float32, by name (shards read one tensor at a
 * time); mixture-of-experts layers stacked as the spec sees them (core/moe/expertStack.ts), so
 * that permutations found on the spec apply to these names.
 */
export async function readLmWeights(weights: string): Promise<Map<string, DenseTensor>> {
  const ckpt = stackExperts(await openCheckpoint(weights));
  try {
    const out = new Map<string, DenseTensor>();
    for (const t of ckpt.tensors) {
      if (BUFFER.test(t.name)) continue;
      out.set(t.name, { shape: [...t.shape], data: await ckpt.readFloat32(t.name) });
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

export interface LoadedLm {
  readonly paths: LmCheckpointPaths;
  readonly config: LmConfig;
  readonly tensors: TensorMap;
}

/** Config and weights of a Hugging Face checkpoint (folder, weights file or shard index). */
export async function loadLmCheckpoint(p: string): Promise<LoadedLm> {
  const paths = locateLmCheckpoint(p);
  const config = await readLmConfig(paths.config);
  const tensors = await readLmWeights(paths.weights);
  return { paths, config, tensors };
}

/** The weights file (or shard index) of a folder, weights file or shard index. */
export function lmWeightsPath(p: string): string {
  return existsSync(p) && statSync(p).isDirectory() ? locateLmCheckpoint(p).weights : p;
}
