/**
 * Synthetic Llama-shaped pairs in Hugging Face layout, for the scale bench (issue 14) and, at
 * tiny size, for tests: random A; B = A under a known permutation of
 *   - the residual stream (embedding columns, every RMSNorm, every projection's input / output
 *     on the residual side, lm_head columns),
 *   - every MLP's hidden units (gate/up rows, down columns),
 *   - the KV groups of each layer, and the query heads within each group: whole head blocks of
 *     q/k/v rows and o columns. Dimensions inside a head are never permuted: q/k carry rotary
 *     pairs (RoPE), so permuting them would change the function.
 * Both models are written as sharded BF16 (`model-0000k-of-0000n.safetensors` + index) with a
 * config.json; the permutation goes to `permutation.json` beside them. Tensors are generated one
 * at a time from a per-tensor seed (B's tensor regenerates A's and gathers it), so memory holds
 * one tensor whatever the size.
 *
 * Convention of permutation.json: along each permuted axis, B[i] = A[perm[i]] (for head blocks,
 * block i of B is block perm[i] of A).
 *
 * Run: node --import tsx bench/scale/generate.ts --preset tiny|100m|1b|7b --out DIR
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encodeFromFloat32, type TensorSource } from '../../src/core/safetensors';
import { writeCheckpointFolder, type ShardToWrite } from '../../src/core/safetensors/shardedWriter';
import { mulberry32, shuffleInPlace } from '../../src/core/matching/prng';

export interface LlamaShape {
  readonly layers: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly maxPositions: number;
}

export const PRESETS: Readonly<Record<'tiny' | '100m' | '1b' | '7b', LlamaShape>> = {
  tiny: { layers: 2, hidden: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8, vocab: 64, maxPositions: 32 },
  // ~101M parameters: 8 layers of width 768, 12 heads in 4 KV groups, MLP 2048, Llama's vocabulary.
  '100m': { layers: 8, hidden: 768, intermediate: 2048, heads: 12, kvHeads: 4, headDim: 64, vocab: 32000, maxPositions: 2048 },
  // TinyLlama-1.1B: 22 layers, hidden 2048, MLP 5632, 32 heads in 4 KV groups, vocabulary 32000.
  '1b': { layers: 22, hidden: 2048, intermediate: 5632, heads: 32, kvHeads: 4, headDim: 64, vocab: 32000, maxPositions: 2048 },
  // Llama-2-7B: 32 layers, hidden 4096, MLP 11008, 32 heads of 128 (no GQA: 32 KV heads), vocabulary 32000.
  '7b': { layers: 32, hidden: 4096, intermediate: 11008, heads: 32, kvHeads: 32, headDim: 128, vocab: 32000, maxPositions: 4096 },
};

/**
 * Largest shard per preset when not the default 512 MB: Llama-2-7B is published as 2 shards
 * (9.98 GB and 3.5 GB), transformers' max_shard_size of 10 GB.
 */
export const PRESET_SHARD_BYTES: Readonly<Partial<Record<keyof typeof PRESETS, number>>> = { '7b': 10e9 };

/** Which symmetries B is permuted by (all by default). */
export interface PermutedGroups {
  readonly residual: boolean;
  readonly mlp: boolean;
  readonly heads: boolean;
}

export interface LlamaPermutation {
  readonly convention: string;
  readonly residual: number[];
  /** Per layer: MLP hidden units. */
  readonly mlp: number[][];
  /** Per layer: KV groups. */
  readonly kvGroups: number[][];
  /** Per layer: all query heads (group-major: head h is in group floor(h / (heads / kvHeads))). */
  readonly queryHeads: number[][];
}

export interface GenerateOptions {
  readonly shape: LlamaShape;
  /** Folder receiving `a/`, `b/` and `permutation.json`. */
  readonly dir: string;
  readonly seed?: number;
  /** Largest shard in bytes (transformers' max_shard_size; default 512 MB). */
  readonly maxShardBytes?: number;
  readonly dtype?: 'BF16' | 'F32';
  readonly permute?: Partial<PermutedGroups>;
  readonly signal?: AbortSignal;
}

export interface GeneratedPair {
  readonly a: string;
  readonly b: string;
  readonly permutationFile: string;
  readonly permutation: LlamaPermutation;
  readonly parameters: number;
}

/** One tensor of the model: how it is initialised and which permutation each axis follows. */
interface TensorPlan {
  readonly name: string;
  readonly shape: readonly [number] | readonly [number, number];
  readonly init: 'linear' | 'embedding' | 'norm';
  /** Row and column index maps of B (B[r][c] = A[rows[r]][cols[c]]); undefined = identity. */
  readonly rows?: Int32Array;
  readonly cols?: Int32Array;
}

function randomPerm(n: number, random: () => number, enabled: boolean): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  return enabled ? shuffleInPlace(p, random) : p;
}

/** Expands a permutation of `blocks` blocks of `size` into an index map over blocks * size rows. */
function blockMap(perm: readonly number[], size: number): Int32Array {
  const out = new Int32Array(perm.length * size);
  for (let b = 0; b < perm.length; b++) for (let e = 0; e < size; e++) out[b * size + e] = perm[b] * size + e;
  return out;
}

/** The permutation of B: a fresh draw from `seed` over the enabled groups. */
export function drawPermutation(shape: LlamaShape, seed: number, groups: PermutedGroups): LlamaPermutation {
  const random = mulberry32(seed ^ 0x5eed);
  const perGroup = shape.heads / shape.kvHeads;
  const residual = randomPerm(shape.hidden, random, groups.residual);
  const mlp: number[][] = [];
  const kvGroups: number[][] = [];
  const queryHeads: number[][] = [];
  for (let l = 0; l < shape.layers; l++) {
    mlp.push(randomPerm(shape.intermediate, random, groups.mlp));
    const kv = randomPerm(shape.kvHeads, random, groups.heads);
    kvGroups.push(kv);
    // New head (g, j) is old head (kv[g], within_g[j]): query heads follow their group, then permute inside it.
    const q: number[] = [];
    for (let g = 0; g < shape.kvHeads; g++) {
      const within = randomPerm(perGroup, random, groups.heads);
      for (let j = 0; j < perGroup; j++) q.push(kv[g] * perGroup + within[j]);
    }
    queryHeads.push(q);
  }
  return { convention: 'along each permuted axis, B[i] = A[perm[i]]; head permutations act on whole head blocks', residual, mlp, kvGroups, queryHeads };
}

/** Every tensor of the model in the order transformers writes them, with B's index maps. */
function tensorPlans(shape: LlamaShape, perm: LlamaPermutation): TensorPlan[] {
  const res = Int32Array.from(perm.residual);
  const plans: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [shape.vocab, shape.hidden], init: 'embedding', cols: res }];
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    const q = blockMap(perm.queryHeads[l], shape.headDim);
    const kv = blockMap(perm.kvGroups[l], shape.headDim);
    const mlp = Int32Array.from(perm.mlp[l]);
    plans.push(
      { name: `${p}.input_layernorm.weight`, shape: [shape.hidden], init: 'norm', rows: res },
      { name: `${p}.self_attn.q_proj.weight`, shape: [shape.heads * shape.headDim, shape.hidden], init: 'linear', rows: q, cols: res },
      { name: `${p}.self_attn.k_proj.weight`, shape: [shape.kvHeads * shape.headDim, shape.hidden], init: 'linear', rows: kv, cols: res },
      { name: `${p}.self_attn.v_proj.weight`, shape: [shape.kvHeads * shape.headDim, shape.hidden], init: 'linear', rows: kv, cols: res },
      { name: `${p}.self_attn.o_proj.weight`, shape: [shape.hidden, shape.heads * shape.headDim], init: 'linear', rows: res, cols: q },
      { name: `${p}.post_attention_layernorm.weight`, shape: [shape.hidden], init: 'norm', rows: res },
      { name: `${p}.mlp.gate_proj.weight`, shape: [shape.intermediate, shape.hidden], init: 'linear', rows: mlp, cols: res },
      { name: `${p}.mlp.up_proj.weight`, shape: [shape.intermediate, shape.hidden], init: 'linear', rows: mlp, cols: res },
      { name: `${p}.mlp.down_proj.weight`, shape: [shape.hidden, shape.intermediate], init: 'linear', rows: res, cols: mlp },
    );
  }
  plans.push({ name: 'model.norm.weight', shape: [shape.hidden], init: 'norm', rows: res });
  plans.push({ name: 'lm_head.weight', shape: [shape.vocab, shape.hidden], init: 'linear', cols: res });
  return plans;
}

/** A string hash (FNV-1a) mixing the tensor name into the seed: each tensor has its own stream. */
function nameSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A's values for one tensor: Gaussian (std 1/sqrt(fan-in) for projections, 1 for embeddings), norms 1 + 0.1 N(0,1). */
function tensorOfA(plan: TensorPlan, seed: number): Float32Array {
  const random = mulberry32(nameSeed(seed, plan.name));
  const n = plan.shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  const std = plan.init === 'linear' ? 1 / Math.sqrt(plan.shape[plan.shape.length - 1]) : plan.init === 'embedding' ? 1 : 0.1;
  const mean = plan.init === 'norm' ? 1 : 0;
  for (let i = 0; i < n; i += 2) {
    // Box-Muller: two normals per pair of uniforms.
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const t = 2 * Math.PI * random();
    out[i] = mean + std * r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(t);
  }
  return out;
}

/** B's values: A's gathered along the plan's index maps (on the encoded elements, so exactly A's bits). */
function gather(bytes: Uint8Array, width: number, plan: TensorPlan): Uint8Array {
  if (!plan.rows && !plan.cols) return bytes;
  const [rows, cols] = plan.shape.length === 1 ? [plan.shape[0], 1] : plan.shape;
  const out = new Uint8Array(bytes.length);
  const rowMap = plan.rows;
  const colMap = plan.shape.length === 1 ? undefined : plan.cols;
  for (let r = 0; r < rows; r++) {
    const src = (rowMap ? rowMap[r] : r) * cols;
    const dst = r * cols;
    if (!colMap) {
      out.set(bytes.subarray(src * width, (src + cols) * width), dst * width);
      continue;
    }
    for (let c = 0; c < cols; c++) {
      const from = (src + colMap[c]) * width;
      const to = (dst + c) * width;
      for (let k = 0; k < width; k++) out[to + k] = bytes[from + k];
    }
  }
  return out;
}

/** Shards in file order, none above maxShardBytes unless one tensor is (as transformers plans them). */
function shardPlan(plans: readonly TensorPlan[], bytesOf: (p: TensorPlan) => number, maxShardBytes: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const p of plans) {
    const b = bytesOf(p);
    if (size > 0 && size + b > maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(p);
    size += b;
  }
  return shards;
}

export function llamaConfig(shape: LlamaShape, dtype: 'BF16' | 'F32'): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    head_dim: shape.headDim,
    hidden_act: 'silu',
    max_position_embeddings: shape.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    vocab_size: shape.vocab,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32',
  };
}

export function parameterCount(shape: LlamaShape): number {
  const { layers, hidden: d, intermediate: m, heads, kvHeads, headDim, vocab } = shape;
  const perLayer = 2 * d + d * heads * headDim * 2 + d * kvHeads * headDim * 2 + 3 * d * m;
  return 2 * vocab * d + layers * perLayer + d;
}

/** Writes A, B and permutation.json under `dir` (see the module comment). */
export async function generateLlamaPair(opts: GenerateOptions): Promise<GeneratedPair> {
  const { shape } = opts;
  if (shape.heads % shape.kvHeads !== 0) throw new Error(`heads (${shape.heads}) must be a multiple of KV heads (${shape.kvHeads})`);
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'BF16';
  const width = dtype === 'BF16' ? 2 : 4;
  const groups: PermutedGroups = { residual: true, mlp: true, heads: true, ...opts.permute };
  const permutation = drawPermutation(shape, seed, groups);
  const plans = tensorPlans(shape, permutation);
  const bytesOf = (p: TensorPlan): number => p.shape.reduce((a, d) => a * d, 1) * width;
  const shards = shardPlan(plans, bytesOf, opts.maxShardBytes ?? 512 * 1024 * 1024);
  const n = shards.length;
  const fileName = (k: number): string => `model-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
  await mkdir(opts.dir, { recursive: true });
  const config = path.join(opts.dir, 'config.json');
  await writeFile(config, `${JSON.stringify(llamaConfig(shape, dtype), null, 2)}\n`);
  const encodedA = (p: TensorPlan): Uint8Array => encodeFromFloat32(dtype, tensorOfA(p, seed));
  const write = async (which: 'a' | 'b'): Promise<string> => {
    const out = path.join(opts.dir, which);
    const toWrite: ShardToWrite[] = shards.map((tensors, k) => ({
      file: fileName(k),
      tensors: tensors.map((p): TensorSource => ({
        name: p.name,
        dtype,
        shape: p.shape,
        read: async () => (which === 'a' ? encodedA(p) : gather(encodedA(p), width, p)),
      })),
    }));
    await writeCheckpointFolder(out, {
      shards: toWrite,
      index: { file: 'model.safetensors.index.json', metadata: {} },
      copy: [config],
      metadata: { format: 'pt' },
      signal: opts.signal,
    });
    return out;
  };
  const a = await write('a');
  const b = await write('b');
  const permutationFile = path.join(opts.dir, 'permutation.json');
  await writeFile(permutationFile, JSON.stringify({ shape, seed, dtype, permuted: groups, ...permutation }));
  return { a, b, permutationFile, permutation, parameters: parameterCount(shape) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const preset = (get('--preset') ?? 'tiny') as keyof typeof PRESETS;
  if (!(preset in PRESETS)) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const dir = get('--out') ?? path.join('bench-output', 'scale', preset);
  const t0 = performance.now();
  const r = await generateLlamaPair({ shape: PRESETS[preset], dir, seed: Number(get('--seed') ?? 0), maxShardBytes: PRESET_SHARD_BYTES[preset] });
  console.log(`wrote ${r.a} and ${r.b} (${(r.parameters / 1e6).toFixed(1)}M parameters each) and ${r.permutationFile} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  void main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
