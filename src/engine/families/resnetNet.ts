/**
 * The forward pass of ResNets from PyTorch state dicts: torchvision naming (BasicBlock and
 * Bottleneck v1.5; a 7x7/2 stem with a 3x3/2 max pool, or a 3x3/1 stem without one for small
 * images) and CIFAR ports such as ResNet-20 with option-A or conv shortcuts. Used by the resnet
 * and resnet-cifar engine modules.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import type { Activation, ModelConfig } from '../../core/families/modelConfig';
import { ModelError } from '../../core/families/modelErrors';
import { resnetPrefix } from '../../core/permspec/inferResnet';
import { activate, batchNorm, conv, maxPool, toNHWC, type ForwardOptions } from '../compute/layers';
import type { Model } from '../compute/model';
import { ParamStore, torchModules, type TorchModule } from '../compute/params';

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

export function buildResnet(tensors: TensorMap, config: ModelConfig, family: 'resnet' | 'resnet-cifar'): Model {
  const prefix = resnetPrefix([...tensors].map(([name, t]) => ({ name, shape: t.shape }))) ?? '';
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
