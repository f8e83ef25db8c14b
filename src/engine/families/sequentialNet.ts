/**
 * The forward pass of sequential nets: MLPs of Linear layers and VGG-style conv stacks (conv
 * [+BN] + activation [+ max-pool per layout], then Linear layers), from PyTorch state dicts.
 * BatchNorm runs in eval mode unless asked. Used by the mlp and vgg engine modules.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorMap } from '../../core/checkpoint';
import type { Activation, ModelConfig } from '../../core/families/modelConfig';
import { ModelError } from '../../core/families/modelErrors';
import { activate, batchNorm, conv, flattenTorch, layerNorm, maxPool, toNHWC, type ForwardOptions } from '../compute/layers';
import type { Model } from '../compute/model';
import { ParamStore, torchModules, type TorchModule } from '../compute/params';

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

export function buildSequential(tensors: TensorMap, config: ModelConfig, family: 'mlp' | 'vgg'): Model {
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
      let pending: { name: string; kind: 'linear' | 'conv'; index: number; activated?: boolean } | undefined;
      const finishLayer = () => {
        if (!pending) return;
        if (!(pending.kind === 'linear' && pending.name === lastLinear.name)) {
          if (!pending.activated) h = activate(h, act);
          opts.onActivation?.(`${pending.name}.weight`, h);
        }
        if (pending.kind === 'conv' && pools?.[pending.index]) h = maxPool(h as tf.Tensor4D, 2, 2, 0);
        pending = undefined;
      };
      for (const [k, s] of steps.entries()) {
        if (s.kind === 'conv') {
          finishLayer();
          convIndex++;
          h = conv(h as tf.Tensor4D, s.w, s.b, 1, s.pad);
          pending = { name: s.name, kind: 'conv', index: convIndex };
        } else if (s.kind === 'linear') {
          finishLayer();
          let activated = false;
          if (s === firstLinear && opts.firstLinearOutput) h = opts.firstLinearOutput;
          else {
            if (h.rank === 4) h = flattenForHead(h as tf.Tensor4D, s.in, s.name);
            // Bias and ReLU in the product's own pass (one kernel instead of three; no norm in between).
            const next = steps[k + 1]?.kind;
            activated = act === 'relu' && s !== lastLinear && next !== 'batchnorm' && next !== 'layernorm';
            h = tf.fused.matMul({ a: h as tf.Tensor2D, b: s.w, ...(s.b ? { bias: s.b } : {}), activation: activated ? 'relu' : 'linear' });
          }
          pending = { name: s.name, kind: 'linear', index: -1, activated };
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
