/**
 * Builders of realistic state dicts (names and shapes as PyTorch / Hugging Face write them,
 * random float32 data from a seeded PRNG) for the families Re-Basin supports. Each returns the
 * tensors in module order, like `model.state_dict()`. The networks are valid: channels chain,
 * BatchNorm running_var is positive, `num_batches_tracked` is a scalar ([]), weights use He
 * scaling so forward passes stay O(1). Tests of specs, matching and the engine share them.
 */
import { mulberry32 } from '../../../src/core/matching/prng';

export interface StateTensor {
  readonly name: string;
  readonly shape: number[];
  readonly data: Float32Array;
}

/** Seeded uniform [0, 1) numbers: the project's one PRNG (mulberry32). */
export const seededRandom = mulberry32;

/** Collects tensors for one state dict with one PRNG. */
class Builder {
  readonly tensors: StateTensor[] = [];
  private readonly rand: () => number;
  constructor(seed: number) {
    this.rand = seededRandom(seed);
  }
  /** Uniform in [lo, hi). */
  uniform(shape: number[], lo: number, hi: number): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.rand();
    return out;
  }
  add(name: string, shape: number[], data: Float32Array): void {
    this.tensors.push({ name, shape, data });
  }
  /** He-uniform weight: variance 2 / fan_in, fan_in = product of every axis but the first. */
  weight(name: string, shape: number[]): void {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const bound = Math.sqrt(6 / fanIn);
    this.add(name, shape, this.uniform(shape, -bound, bound));
  }
  small(name: string, shape: number[], scale = 0.1): void {
    this.add(name, shape, this.uniform(shape, -scale, scale));
  }
  /** nn.Linear (PyTorch layout [out, in]). */
  linear(prefix: string, out: number, inp: number, bias = true): void {
    this.weight(`${prefix}.weight`, [out, inp]);
    if (bias) this.small(`${prefix}.bias`, [out]);
  }
  /** GPT-2 Conv1D: weight stored [in, out]. */
  conv1d(prefix: string, inp: number, out: number): void {
    const bound = Math.sqrt(6 / inp);
    this.add(`${prefix}.weight`, [inp, out], this.uniform([inp, out], -bound, bound));
    this.small(`${prefix}.bias`, [out]);
  }
  conv(prefix: string, out: number, inp: number, k: number, bias: boolean): void {
    this.weight(`${prefix}.weight`, [out, inp, k, k]);
    if (bias) this.small(`${prefix}.bias`, [out]);
  }
  batchNorm(prefix: string, c: number): void {
    this.add(`${prefix}.weight`, [c], this.uniform([c], 0.8, 1.2));
    this.small(`${prefix}.bias`, [c]);
    this.small(`${prefix}.running_mean`, [c]);
    this.add(`${prefix}.running_var`, [c], this.uniform([c], 0.5, 1.5));
    this.add(`${prefix}.num_batches_tracked`, [], new Float32Array([100]));
  }
  layerNorm(prefix: string, d: number, bias = true): void {
    this.add(`${prefix}.weight`, [d], this.uniform([d], 0.8, 1.2));
    if (bias) this.small(`${prefix}.bias`, [d]);
  }
  embedding(name: string, rows: number, d: number): void {
    this.add(name, [rows, d], this.uniform([rows, d], -1, 1));
  }
}

/** Name and shape only (what spec code reads from a header). */
export function shapesOf(tensors: readonly StateTensor[]): { name: string; shape: number[] }[] {
  return tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
}

export function toTensorMap(tensors: readonly StateTensor[]): Map<string, { shape: readonly number[]; data: Float32Array }> {
  return new Map(tensors.map((t) => [t.name, { shape: t.shape, data: t.data }]));
}

// ------------------------------------------------------------------------ MLP

export type MlpNaming = 'layers' | 'fc' | 'sequential' | 'model.fc';

/** Module name of Linear layer i under each naming: `layers.i`, `fc{i+1}`, `net.{2i}` (ReLU between), `model.fc.{2i+1}` (Flatten first). */
export function mlpLayerName(naming: MlpNaming, i: number): string {
  switch (naming) {
    case 'layers':
      return `layers.${i}`;
    case 'fc':
      return `fc${i + 1}`;
    case 'sequential':
      return `net.${2 * i}`;
    case 'model.fc':
      return `model.fc.${2 * i + 1}`;
  }
}

/** Linear layers sizes[0] -> sizes[1] -> ... -> sizes[n] (ReLU between, none after the last). */
export function mlpStateDict(opts: { sizes: readonly number[]; naming?: MlpNaming; bias?: boolean; seed?: number }): StateTensor[] {
  const b = new Builder(opts.seed ?? 1);
  for (let i = 0; i + 1 < opts.sizes.length; i++) {
    b.linear(mlpLayerName(opts.naming ?? 'layers', i), opts.sizes[i + 1], opts.sizes[i], opts.bias ?? true);
  }
  return b.tensors;
}

// ------------------------------------------------------------------------ VGG

/** torchvision VGG-11 ("A") configuration: channel counts, 'M' = 2x2 max pool. */
export const VGG11_CFG: readonly (number | 'M')[] = [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'];

/**
 * torchvision VGG layout: `features.N` (Conv2d 3x3 with bias, BatchNorm2d, ReLU; 'M' a MaxPool),
 * then `classifier.{0,3,6,...}` Linear layers (ReLU, Dropout between). The first classifier
 * layer reads channels x spatial x spatial features (spatial = 7 for torchvision's adaptive
 * pool at 224px; 1 for CIFAR-style VGGs).
 */
export function vggStateDict(opts: {
  cfg?: readonly (number | 'M')[];
  inChannels?: number;
  batchNorm?: boolean;
  hidden?: readonly number[];
  numClasses?: number;
  spatial?: number;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 2);
  const bn = opts.batchNorm ?? true;
  let idx = 0;
  let c = opts.inChannels ?? 3;
  for (const v of opts.cfg ?? VGG11_CFG) {
    if (v === 'M') {
      idx += 1;
      continue;
    }
    b.conv(`features.${idx}`, v, c, 3, true);
    if (bn) b.batchNorm(`features.${idx + 1}`, v);
    idx += bn ? 3 : 2;
    c = v;
  }
  const spatial = opts.spatial ?? 7;
  const sizes = [c * spatial * spatial, ...(opts.hidden ?? [4096, 4096]), opts.numClasses ?? 1000];
  for (let i = 0; i + 1 < sizes.length; i++) b.linear(`classifier.${3 * i}`, sizes[i + 1], sizes[i]);
  return b.tensors;
}

// ------------------------------------------------------------------------ ResNets

/**
 * torchvision ResNet: `conv1` 7x7 (no bias), `bn1`, `layer{1..4}.M` BasicBlock
 * (conv1 3x3, bn1, conv2 3x3, bn2) or Bottleneck (conv1 1x1, conv2 3x3, conv3 1x1 with
 * 4x expansion), `downsample.{0,1}` (1x1 conv, BN) on the first block of a stage when the
 * stride (2 for stages 2+) or the width changes, `fc`. ResNet-18: basic, [2,2,2,2];
 * ResNet-50: bottleneck, [3,4,6,3].
 */
export function resnetStateDict(opts: {
  block: 'basic' | 'bottleneck';
  layers: readonly number[];
  widths?: readonly number[];
  stem?: number;
  /** Stem kernel: 7 (torchvision, stride 2 + max pool) or 3 (small images: stride 1, no pool). */
  stemKernel?: 3 | 7;
  inChannels?: number;
  numClasses?: number;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 3);
  const widths = opts.widths ?? [64, 128, 256, 512];
  const expansion = opts.block === 'basic' ? 1 : 4;
  let inplanes = opts.stem ?? widths[0];
  b.conv('conv1', inplanes, opts.inChannels ?? 3, opts.stemKernel ?? 7, false);
  b.batchNorm('bn1', inplanes);
  opts.layers.forEach((count, s) => {
    const planes = widths[s];
    const stride = s === 0 ? 1 : 2;
    for (let m = 0; m < count; m++) {
      const p = `layer${s + 1}.${m}`;
      if (opts.block === 'basic') {
        b.conv(`${p}.conv1`, planes, inplanes, 3, false);
        b.batchNorm(`${p}.bn1`, planes);
        b.conv(`${p}.conv2`, planes, planes, 3, false);
        b.batchNorm(`${p}.bn2`, planes);
      } else {
        b.conv(`${p}.conv1`, planes, inplanes, 1, false);
        b.batchNorm(`${p}.bn1`, planes);
        b.conv(`${p}.conv2`, planes, planes, 3, false);
        b.batchNorm(`${p}.bn2`, planes);
        b.conv(`${p}.conv3`, planes * expansion, planes, 1, false);
        b.batchNorm(`${p}.bn3`, planes * expansion);
      }
      if (m === 0 && (stride !== 1 || inplanes !== planes * expansion)) {
        b.conv(`${p}.downsample.0`, planes * expansion, inplanes, 1, false);
        b.batchNorm(`${p}.downsample.1`, planes * expansion);
      }
      inplanes = planes * expansion;
    }
  });
  b.linear('fc', opts.numClasses ?? 1000, inplanes);
  return b.tensors;
}

/**
 * CIFAR ResNet (akamaster/pytorch_resnet_cifar10 naming): `conv1` 3x3 (no bias), `bn1`,
 * `layer{1,2,3}.{0..n-1}.{conv1,bn1,conv2,bn2}` with n = (depth - 2) / 6, `linear`.
 * Option 'A' shortcuts have no parameters (subsample + zero-pad planes/4 channels on each side);
 * option 'B' adds `shortcut.0` (1x1 conv) and `shortcut.1` (BN) where the width changes.
 */
export function cifarResnetStateDict(opts: {
  depth?: number;
  widths?: readonly number[];
  shortcut: 'A' | 'B';
  numClasses?: number;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 4);
  const n = ((opts.depth ?? 20) - 2) / 6;
  if (!Number.isInteger(n) || n < 1) throw new Error(`cifar resnet depth must be 6n+2, got ${opts.depth}`);
  const widths = opts.widths ?? [16, 32, 64];
  let inplanes = widths[0];
  b.conv('conv1', inplanes, 3, 3, false);
  b.batchNorm('bn1', inplanes);
  widths.forEach((planes, s) => {
    for (let m = 0; m < n; m++) {
      const p = `layer${s + 1}.${m}`;
      b.conv(`${p}.conv1`, planes, inplanes, 3, false);
      b.batchNorm(`${p}.bn1`, planes);
      b.conv(`${p}.conv2`, planes, planes, 3, false);
      b.batchNorm(`${p}.bn2`, planes);
      const stride = s > 0 && m === 0 ? 2 : 1;
      if (opts.shortcut === 'B' && (stride !== 1 || inplanes !== planes)) {
        b.conv(`${p}.shortcut.0`, planes, inplanes, 1, false);
        b.batchNorm(`${p}.shortcut.1`, planes);
      }
      inplanes = planes;
    }
  });
  b.linear('linear', opts.numClasses ?? 10, inplanes);
  return b.tensors;
}

// ------------------------------------------------------------------------ transformers

/** Hugging Face GPT2LMHeadModel: `transformer.{wte,wpe,h.N.*,ln_f}`, Conv1D weights [in, out], tied `lm_head`. */
export function gpt2StateDict(opts: {
  layers?: number;
  dModel?: number;
  vocab?: number;
  positions?: number;
  prefix?: string;
  lmHead?: boolean;
  maskBuffers?: boolean;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 5);
  const d = opts.dModel ?? 32;
  const p = opts.prefix ?? 'transformer.';
  b.embedding(`${p}wte.weight`, opts.vocab ?? 50, d);
  b.embedding(`${p}wpe.weight`, opts.positions ?? 16, d);
  for (let i = 0; i < (opts.layers ?? 2); i++) {
    const h = `${p}h.${i}`;
    b.layerNorm(`${h}.ln_1`, d);
    if (opts.maskBuffers) {
      const t = opts.positions ?? 16;
      b.add(`${h}.attn.bias`, [1, 1, t, t], new Float32Array(t * t).fill(1));
      b.add(`${h}.attn.masked_bias`, [], new Float32Array([-1e4]));
    }
    b.conv1d(`${h}.attn.c_attn`, d, 3 * d);
    b.conv1d(`${h}.attn.c_proj`, d, d);
    b.layerNorm(`${h}.ln_2`, d);
    b.conv1d(`${h}.mlp.c_fc`, d, 4 * d);
    b.conv1d(`${h}.mlp.c_proj`, 4 * d, d);
  }
  b.layerNorm(`${p}ln_f`, d);
  if (opts.lmHead ?? true) {
    const wte = b.tensors[0];
    b.add('lm_head.weight', [...wte.shape], wte.data.slice());
  }
  return b.tensors;
}

/** Hugging Face LlamaForCausalLM: `model.{embed_tokens,layers.N.*,norm}`, `lm_head`; grouped-query k/v. */
export function llamaStateDict(opts: {
  layers?: number;
  dModel?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  vocab?: number;
  rotaryBuffers?: boolean;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 6);
  const d = opts.dModel ?? 32;
  const heads = opts.heads ?? 4;
  const headDim = d / heads;
  const kv = (opts.kvHeads ?? 2) * headDim;
  const inter = opts.intermediate ?? 88;
  b.embedding('model.embed_tokens.weight', opts.vocab ?? 50, d);
  for (let i = 0; i < (opts.layers ?? 2); i++) {
    const l = `model.layers.${i}`;
    b.layerNorm(`${l}.input_layernorm`, d, false);
    b.linear(`${l}.self_attn.q_proj`, d, d, false);
    b.linear(`${l}.self_attn.k_proj`, kv, d, false);
    b.linear(`${l}.self_attn.v_proj`, kv, d, false);
    b.linear(`${l}.self_attn.o_proj`, d, d, false);
    if (opts.rotaryBuffers) b.add(`${l}.self_attn.rotary_emb.inv_freq`, [headDim / 2], b.uniform([headDim / 2], 0, 1));
    b.layerNorm(`${l}.post_attention_layernorm`, d, false);
    b.linear(`${l}.mlp.gate_proj`, inter, d, false);
    b.linear(`${l}.mlp.up_proj`, inter, d, false);
    b.linear(`${l}.mlp.down_proj`, d, inter, false);
  }
  b.layerNorm('model.norm', d, false);
  b.linear('lm_head', opts.vocab ?? 50, d, false);
  return b.tensors;
}

/** Hugging Face BertModel under `bert.` (as in BertForSequenceClassification), with pooler and optional classifier. */
export function bertStateDict(opts: {
  layers?: number;
  dModel?: number;
  intermediate?: number;
  vocab?: number;
  positions?: number;
  typeVocab?: number;
  prefix?: string;
  pooler?: boolean;
  classifier?: number;
  seed?: number;
}): StateTensor[] {
  const b = new Builder(opts.seed ?? 7);
  const d = opts.dModel ?? 32;
  const inter = opts.intermediate ?? 4 * d;
  const p = opts.prefix ?? 'bert.';
  const positions = opts.positions ?? 16;
  b.embedding(`${p}embeddings.word_embeddings.weight`, opts.vocab ?? 50, d);
  b.embedding(`${p}embeddings.position_embeddings.weight`, positions, d);
  b.embedding(`${p}embeddings.token_type_embeddings.weight`, opts.typeVocab ?? 2, d);
  b.layerNorm(`${p}embeddings.LayerNorm`, d);
  b.add(`${p}embeddings.position_ids`, [1, positions], Float32Array.from({ length: positions }, (_, i) => i));
  for (let i = 0; i < (opts.layers ?? 2); i++) {
    const l = `${p}encoder.layer.${i}`;
    b.linear(`${l}.attention.self.query`, d, d);
    b.linear(`${l}.attention.self.key`, d, d);
    b.linear(`${l}.attention.self.value`, d, d);
    b.linear(`${l}.attention.output.dense`, d, d);
    b.layerNorm(`${l}.attention.output.LayerNorm`, d);
    b.linear(`${l}.intermediate.dense`, inter, d);
    b.linear(`${l}.output.dense`, d, inter);
    b.layerNorm(`${l}.output.LayerNorm`, d);
  }
  if (opts.pooler ?? true) b.linear(`${p}pooler.dense`, d, d);
  if (opts.classifier !== undefined) b.linear('classifier', opts.classifier, d);
  return b.tensors;
}
