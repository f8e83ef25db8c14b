/**
 * Forward passes (logits) for the families spec inference knows, built from PyTorch state
 * dicts: sequential nets (MLPs of Linear layers, VGG-style conv stacks: conv [+BN] + act
 * [+ max-pool per layout], then Linear layers) and ResNets (torchvision naming, CIFAR ports
 * such as ResNet-20 with option-A or conv shortcuts). BatchNorm runs in eval mode unless asked.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Checkpoint, DenseTensor, TensorMap } from '../../core/checkpoint';
import { activate, batchNorm, conv, flattenTorch, layerNorm, maxPool, toNHWC, type ForwardOptions } from './layers';
import { readModelConfig, type Activation, type ModelConfig, type ModelFamily } from './modelConfig';
import { ModelError } from './modelErrors';
import { ParamStore, torchModules, type TorchModule } from './params';

export type { ForwardOptions } from './layers';

export interface Model {
  readonly family: ModelFamily;
  /** Per-example input shape in PyTorch order: [features] or [channels, height, width]. */
  readonly inputShape: number[];
  readonly classes: number;
  /** Module names of the BatchNorm layers (empty when none). */
  readonly batchNormLayers: string[];
  /** Module name of the Linear layer that reads the input directly (MLPs), if any. */
  readonly inputLinear?: string;
  /** Logits [n, classes]. Call inside tf.tidy (or dispose the result). */
  forward(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor2D;
  setBatchNormStats(layer: string, mean: Float32Array, variance: Float32Array): void;
  dispose(): void;
}

/** Every tensor of a checkpoint as float32 (for interpolation and model building). */
export async function readTensors(ckpt: Checkpoint): Promise<Map<string, DenseTensor>> {
  const out = new Map<string, DenseTensor>();
  for (const t of ckpt.tensors) out.set(t.name, { shape: [...t.shape], data: await ckpt.readFloat32(t.name) });
  return out;
}

/** Builds a model from a checkpoint (reading its weights) or tensors; the config file is read when `checkpointPath` or `configPath` is given. */
export async function loadModel(source: Checkpoint | TensorMap, configPath?: string): Promise<Model> {
  const isCkpt = (s: Checkpoint | TensorMap): s is Checkpoint => typeof (s as Checkpoint).readFloat32 === 'function';
  const tensors = isCkpt(source) ? await readTensors(source) : source;
  const config = isCkpt(source) ? readModelConfig(source.path, configPath) : configPath ? readModelConfig('', configPath) : {};
  return buildModel(tensors, config);
}

/** The family the weights look like (a config's `family` wins when present). */
export function detectFamily(tensors: TensorMap, config: ModelConfig = {}): ModelFamily {
  if (config.family) return config.family;
  const names = [...tensors.keys()];
  if (names.some((n) => /(^|\.)(wte|embed_tokens|word_embeddings|attn|self_attn|attention)(\.|$)/.test(n))) return 'transformer';
  const prefix = resnetPrefix(names);
  if (prefix !== null) {
    const stem = tensors.get(`${prefix}conv1.weight`);
    return stem && stem.shape[2] === 7 ? 'resnet' : 'resnet-cifar';
  }
  if ([...tensors.values()].some((t) => t.shape.length === 4)) return 'vgg';
  return 'mlp';
}

export function buildModel(tensors: TensorMap, config: ModelConfig = {}): Model {
  const family = detectFamily(tensors, config);
  switch (family) {
    case 'mlp':
    case 'vgg':
      return buildSequential(tensors, config, family);
    case 'resnet':
    case 'resnet-cifar':
      return buildResnet(tensors, config, family);
    case 'transformer':
      // Their forward pass (token ids to logits, ./transformer) serves the equivalence check only.
      throw new ModelError('Unsupported', 'transformer checkpoints have no classifier forward pass for barriers, evaluation or data-driven matching (weight matching and the equivalence check work)');
  }
}

// ---------------------------------------------------------------- sequential (MLP, VGG)

/** torchvision's VGG feature layouts, matched by conv widths up to a common width multiplier. */
const VGG_LAYOUTS: readonly (number | 'M')[][] = [
  [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
];

function poolsAfter(convWidths: number[], layout: readonly (number | 'M')[] | undefined): boolean[] | undefined {
  const tryLayout = (l: readonly (number | 'M')[], scaled: boolean): boolean[] | undefined => {
    const widths = l.filter((v): v is number => v !== 'M');
    if (widths.length !== convWidths.length) return undefined;
    const k = convWidths[0] / widths[0];
    if (!widths.every((w, i) => (scaled ? Math.abs(w * k - convWidths[i]) < 1e-9 : w === convWidths[i]))) return undefined;
    const pools = convWidths.map(() => false);
    let c = -1;
    for (const v of l) if (v === 'M') { if (c >= 0) pools[c] = true; } else c++;
    return pools;
  };
  if (layout) {
    const p = tryLayout(layout, false);
    if (!p) throw new ModelError('ConfigInvalid', `model config layout [${layout.join(', ')}] does not match the conv widths [${convWidths.join(', ')}]`);
    return p;
  }
  for (const l of VGG_LAYOUTS) {
    const p = tryLayout(l, true);
    if (p) return p;
  }
  return undefined;
}

function buildSequential(tensors: TensorMap, config: ModelConfig, family: 'mlp' | 'vgg'): Model {
  const mods = executionOrder(torchModules(tensors).filter((m) => m.kind !== 'other'));
  const store = new ParamStore();
  const eps = config.eps ?? 1e-5;
  const act: Activation = config.activation ?? 'relu';
  type Step =
    | { kind: 'linear'; name: string; w: tf.Tensor2D; b?: tf.Tensor1D; in: number; out: number }
    | { kind: 'conv'; name: string; w: tf.Tensor4D; b?: tf.Tensor1D; pad: number; in: number; out: number }
    | { kind: 'batchnorm'; name: string }
    | { kind: 'layernorm'; name: string; g: tf.Tensor1D; b?: tf.Tensor1D };
  const steps: Step[] = [];
  try {
    for (const m of mods) {
      const w = m.params.get('weight');
      const b = m.params.get('bias');
      if (m.kind === 'linear' && w) steps.push({ kind: 'linear', name: m.name, w: store.linearWeight(`${m.name}.weight`, w), b: b && store.vector(b), in: w.shape[1], out: w.shape[0] });
      else if (m.kind === 'conv' && w) steps.push({ kind: 'conv', name: m.name, w: store.convWeight(`${m.name}.weight`, w), b: b && store.vector(b), pad: Math.floor(w.shape[2] / 2), in: w.shape[1], out: w.shape[0] });
      else if (m.kind === 'batchnorm') (store.addBatchNorm(m), steps.push({ kind: 'batchnorm', name: m.name }));
      else if (m.kind === 'layernorm' && w) steps.push({ kind: 'layernorm', name: m.name, g: store.vector(w), b: b && store.vector(b) });
    }
  } catch (e) {
    store.dispose();
    throw e;
  }
  const linears = steps.filter((s): s is Extract<Step, { kind: 'linear' }> => s.kind === 'linear');
  const convs = steps.filter((s): s is Extract<Step, { kind: 'conv' }> => s.kind === 'conv');
  if (linears.length === 0) {
    store.dispose();
    throw new ModelError('Unsupported', 'no Linear layer found: cannot build a classifier head');
  }
  // Check the chain: each layer reads what the previous one writes.
  for (let i = 1; i < convs.length; i++) if (convs[i].in !== convs[i - 1].out) throw chainError(convs[i - 1].name, convs[i].name, convs[i - 1].out, convs[i].in, store);
  for (let i = 1; i < linears.length; i++) if (linears[i].in !== linears[i - 1].out) throw chainError(linears[i - 1].name, linears[i].name, linears[i - 1].out, linears[i].in, store);
  const pools = convs.length > 0 ? poolsAfter(convs.map((c) => c.out), config.layout) : undefined;
  const lastLinear = linears[linears.length - 1];
  // The first step reads the input directly when it is a Linear layer (an MLP).
  const firstLinear = steps[0]?.kind === 'linear' ? steps[0] : undefined;
  const isConv = convs.length > 0;
  const inputShape = config.inputShape ? [...config.inputShape] : isConv ? [convs[0].in, 32, 32] : [linears[0].in];

  // Which step ends a "layer" (the activation goes after the layer's norm, if any).
  const forward = (x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D =>
    tf.tidy(() => {
      let h: tf.Tensor = isConv ? toNHWC(x, convs[0].in, config.inputShape) : tf.reshape(x, [x.shape[0], -1]);
      if (!isConv && h.shape[1] !== linears[0].in) throw new ModelError('ShapeMismatch', `input has ${h.shape[1]} features per example, \`${linears[0].name}\` expects ${linears[0].in}`);
      let convIndex = -1;
      let pending: { name: string; kind: 'linear' | 'conv'; index: number } | undefined;
      const finishLayer = () => {
        if (!pending) return;
        if (!(pending.kind === 'linear' && pending.name === lastLinear.name)) {
          h = activate(h, act);
          opts.onActivation?.(`${pending.name}.weight`, h);
        }
        if (pending.kind === 'conv' && pools?.[pending.index]) h = maxPool(h as tf.Tensor4D, 2, 2, 0);
        pending = undefined;
      };
      for (const s of steps) {
        if (s.kind === 'conv') {
          finishLayer();
          convIndex++;
          h = conv(h as tf.Tensor4D, s.w, s.b, 1, s.pad);
          pending = { name: s.name, kind: 'conv', index: convIndex };
        } else if (s.kind === 'linear') {
          finishLayer();
          if (s === firstLinear && opts.firstLinearOutput) h = opts.firstLinearOutput;
          else {
            if (h.rank === 4) h = flattenForHead(h as tf.Tensor4D, s.in, s.name);
            h = tf.matMul(h as tf.Tensor2D, s.w);
            if (s.b) h = tf.add(h, s.b);
          }
          pending = { name: s.name, kind: 'linear', index: -1 };
        } else if (s.kind === 'batchnorm') {
          h = batchNorm(h, s.name, store.bn.get(s.name)!, eps, opts);
        } else {
          h = layerNorm(h, s.g, s.b, eps);
        }
      }
      finishLayer();
      return h as tf.Tensor2D;
    });
  return {
    family,
    inputShape,
    inputLinear: firstLinear?.name,
    classes: lastLinear.out,
    batchNormLayers: [...store.bn.keys()],
    forward,
    setBatchNormStats: (l, m, v) => store.setBatchNormStats(l, m, v),
    dispose: () => store.dispose(),
  };
}

/**
 * Names sort `classifier.*` before `features.*`, so natural order is not execution order: convs
 * (with the norms that follow them in their group) run before Linear layers; order is natural within each.
 */
export function executionOrder(mods: TorchModule[]): TorchModule[] {
  const group = (m: TorchModule): string => m.name.split('.')[0];
  const phase = new Map<TorchModule, number>();
  const lastPhase = new Map<string, number>();
  const groupHasConv = new Set(mods.filter((m) => m.kind === 'conv').map(group));
  for (const m of mods) {
    let p: number;
    if (m.kind === 'conv') p = 0;
    else if (m.kind === 'linear') p = 1;
    else p = lastPhase.get(group(m)) ?? (groupHasConv.has(group(m)) ? 0 : 1);
    phase.set(m, p);
    lastPhase.set(group(m), p);
  }
  return [...mods].sort((a, b) => phase.get(a)! - phase.get(b)!);
}

function chainError(a: string, b: string, out: number, inp: number, store: ParamStore): ModelError {
  store.dispose();
  return new ModelError('ShapeMismatch', `\`${a}\` writes ${out} units but the next layer \`${b}\` reads ${inp}: not a sequential chain (give a spec and model config)`);
}

/** Conv features to the first Linear: flatten, with torchvision's adaptive average pooling when sizes call for it. */
function flattenForHead(h: tf.Tensor4D, inFeatures: number, name: string): tf.Tensor2D {
  const [, H, W, C] = h.shape;
  if (C * H * W === inFeatures) return flattenTorch(h);
  if (C === inFeatures) return tf.mean(h, [1, 2]) as tf.Tensor2D;
  const k = Math.round(Math.sqrt(inFeatures / C));
  if (k * k * C === inFeatures) {
    if (H === 1 && W === 1) return flattenTorch(tf.tile(h, [1, k, k, 1]));
    if (H % k === 0 && W % k === 0) return flattenTorch(tf.avgPool(h, [H / k, W / k], [H / k, W / k], 'valid'));
  }
  throw new ModelError('ShapeMismatch', `conv features [${C}, ${H}, ${W}] cannot feed \`${name}\` (${inFeatures} inputs): give inputShape/layout in the model config`);
}

// ---------------------------------------------------------------- ResNets

export function resnetPrefix(names: readonly string[]): string | null {
  for (const n of names) {
    const m = /^(.*?)layer\d+\.\d+\.conv1\.weight$/.exec(n);
    if (m) return m[1];
  }
  return null;
}

interface ConvBn {
  readonly conv: string;
  readonly w: tf.Tensor4D;
  readonly b?: tf.Tensor1D;
  readonly bn?: string;
  readonly k: number;
  readonly out: number;
  readonly in: number;
}

interface Block {
  readonly name: string;
  readonly convs: ConvBn[];
  readonly shortcut?: ConvBn;
  readonly stride: number;
  readonly bottleneck: boolean;
  readonly inC: number;
  readonly outC: number;
}

function buildResnet(tensors: TensorMap, config: ModelConfig, family: 'resnet' | 'resnet-cifar'): Model {
  const names = [...tensors.keys()];
  const prefix = resnetPrefix(names) ?? '';
  const rel = new Map<string, DenseTensor>();
  for (const [n, t] of tensors) if (n.startsWith(prefix)) rel.set(n.slice(prefix.length), t);
  const mods = new Map<string, TorchModule>(torchModules(rel).map((m) => [m.name, m]));
  const store = new ParamStore();
  const eps = config.eps ?? 1e-5;
  const act: Activation = config.activation ?? 'relu';
  const convBn = (convName: string, bnName: string | undefined): ConvBn => {
    const m = mods.get(convName);
    const w = m?.params.get('weight');
    if (!m || m.kind !== 'conv' || !w) throw new ModelError('Unsupported', `resnet: \`${prefix}${convName}.weight\` is missing or not a conv`);
    const bnMod = bnName ? mods.get(bnName) : undefined;
    if (bnMod && bnMod.kind === 'batchnorm') store.addBatchNorm(bnMod);
    const b = m.params.get('bias');
    return { conv: convName, w: store.convWeight(`${convName}.weight`, w), b: b && store.vector(b), bn: bnMod?.kind === 'batchnorm' ? bnName : undefined, k: w.shape[2], out: w.shape[0], in: w.shape[1] };
  };
  let stem: ConvBn;
  const blocks: Block[] = [];
  let head: { name: string; w: tf.Tensor2D; b?: tf.Tensor1D; in: number; out: number };
  try {
    stem = convBn('conv1', mods.has('bn1') ? 'bn1' : undefined);
    const blockNames = [...new Set([...mods.keys()].map((n) => /^(layer\d+\.\d+)\./.exec(n)?.[1]).filter((n): n is string => !!n))];
    for (const bname of blockNames) {
      const [, stage, index] = /^layer(\d+)\.(\d+)$/.exec(bname)!.map(Number);
      const convs: ConvBn[] = [];
      for (let i = 1; mods.has(`${bname}.conv${i}`); i++) convs.push(convBn(`${bname}.conv${i}`, `${bname}.bn${i}`));
      const scName = mods.has(`${bname}.downsample.0`) ? 'downsample' : mods.has(`${bname}.shortcut.0`) ? 'shortcut' : undefined;
      const shortcut = scName ? convBn(`${bname}.${scName}.0`, `${bname}.${scName}.1`) : undefined;
      // torchvision and the CIFAR ports downsample in the first block of every stage after the first.
      const stride = index === 0 && stage >= 2 ? 2 : 1;
      blocks.push({ name: bname, convs, shortcut, stride, bottleneck: convs.length === 3, inC: convs[0].in, outC: convs[convs.length - 1].out });
    }
    const headMod = [...mods.values()].find((m) => m.kind === 'linear' && !m.name.startsWith('layer'));
    if (!headMod) throw new ModelError('Unsupported', 'resnet: no classifier (`fc` / `linear`) found');
    const hw = headMod.params.get('weight')!;
    const hb = headMod.params.get('bias');
    head = { name: headMod.name, w: store.linearWeight(`${headMod.name}.weight`, hw), b: hb && store.vector(hb), in: hw.shape[1], out: hw.shape[0] };
  } catch (e) {
    store.dispose();
    throw e;
  }
  const bigStem = stem.k === 7;
  const inputShape = config.inputShape ? [...config.inputShape] : [stem.in, bigStem ? 224 : 32, bigStem ? 224 : 32];

  const applyConvBn = (x: tf.Tensor4D, c: ConvBn, stride: number, opts: ForwardOptions): tf.Tensor4D => {
    let y: tf.Tensor = conv(x, c.w, c.b, stride, Math.floor(c.k / 2));
    if (c.bn) y = batchNorm(y, c.bn, store.bn.get(c.bn)!, eps, opts);
    return y as tf.Tensor4D;
  };

  const forward = (x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D =>
    tf.tidy(() => {
      let h = toNHWC(x, stem.in, config.inputShape);
      h = activate(applyConvBn(h, stem, bigStem ? 2 : 1, opts), act) as tf.Tensor4D;
      opts.onActivation?.(`${prefix}${stem.conv}.weight`, h);
      if (bigStem) h = maxPool(h, 3, 2, 1);
      for (const b of blocks) {
        let y = h;
        b.convs.forEach((c, i) => {
          // Basic blocks stride in conv1; torchvision bottlenecks (v1.5) in conv2 (the 3x3).
          const s = (b.bottleneck ? i === 1 : i === 0) ? b.stride : 1;
          y = applyConvBn(y, c, s, opts);
          if (i < b.convs.length - 1) {
            y = activate(y, act) as tf.Tensor4D;
            opts.onActivation?.(`${prefix}${c.conv}.weight`, y);
          }
        });
        let sc: tf.Tensor4D;
        if (b.shortcut) sc = applyConvBn(h, b.shortcut, b.stride, opts);
        else if (b.inC !== b.outC || b.stride !== 1) {
          // Option A (He et al. 2016, CIFAR): subsample, then zero-pad the new channels on both sides.
          const sub = b.stride > 1 ? tf.stridedSlice(h, [0, 0, 0, 0], h.shape, [1, b.stride, b.stride, 1]) as tf.Tensor4D : h;
          const extra = b.outC - b.inC;
          sc = tf.pad(sub, [[0, 0], [0, 0], [0, 0], [Math.floor(extra / 2), extra - Math.floor(extra / 2)]]);
        } else sc = h;
        h = activate(tf.add(y, sc), act) as tf.Tensor4D;
        // The block output is the residual stream: the permutation on the last conv's output axis.
        opts.onActivation?.(`${prefix}${b.convs[b.convs.length - 1].conv}.weight`, h);
      }
      const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
      const logits = tf.matMul(pooled, head.w);
      return (head.b ? tf.add(logits, head.b) : logits) as tf.Tensor2D;
    });
  return {
    family,
    inputShape,
    classes: head.out,
    batchNormLayers: [...store.bn.keys()],
    forward,
    setBatchNormStats: (l, m, v) => store.setBatchNormStats(l, m, v),
    dispose: () => store.dispose(),
  };
}
