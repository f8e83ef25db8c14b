/**
 * PyTorch parameters as tfjs tensors, converted once: Linear weights [out, in] are stored
 * pre-transposed as [in, out] (wasm's matMul with transposeB is 10-15x slower, see
 * notes/COMPUTE.md), conv weights [out, in, kh, kw] become tfjs's [kh, kw, in, out] (NHWC).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DenseTensor, TensorMap } from '../../core/checkpoint';
import { naturalCompare } from '../../core/permspec/shapes';
import { ModelError } from './modelErrors';

export type ModuleKind = 'linear' | 'conv' | 'batchnorm' | 'layernorm' | 'other';

export interface TorchModule {
  readonly name: string;
  readonly kind: ModuleKind;
  /** Parameter name (last dotted component) -> tensor. */
  readonly params: ReadonlyMap<string, DenseTensor>;
}

/** Groups tensors by module (name up to the last '.') in natural order (`layers.2` before `layers.10`). */
export function torchModules(tensors: TensorMap): TorchModule[] {
  const groups = new Map<string, Map<string, DenseTensor>>();
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf('.');
    const mod = dot < 0 ? '' : name.slice(0, dot);
    const param = name.slice(dot + 1);
    if (param === 'num_batches_tracked') continue;
    let g = groups.get(mod);
    if (!g) groups.set(mod, (g = new Map()));
    g.set(param, t);
  }
  return [...groups.keys()].sort(naturalCompare).map((name) => {
    const params = groups.get(name)!;
    return { name, kind: classify(params), params };
  });
}

function classify(p: ReadonlyMap<string, DenseTensor>): ModuleKind {
  const w = p.get('weight');
  if (p.has('running_mean') && p.has('running_var')) return 'batchnorm';
  if (!w) return 'other';
  if (w.shape.length === 4) return 'conv';
  if (w.shape.length === 2) return 'linear';
  if (w.shape.length === 1) return 'layernorm';
  return 'other';
}

export interface BatchNormParams {
  gamma?: tf.Tensor1D;
  beta?: tf.Tensor1D;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
  readonly size: number;
}

/** Owns every tf tensor a model uses; `dispose()` frees them all. */
export class ParamStore {
  private readonly owned: tf.Tensor[] = [];
  readonly bn = new Map<string, BatchNormParams>();

  private keep<T extends tf.Tensor>(t: T): T {
    this.owned.push(t);
    return t;
  }

  vector(t: DenseTensor): tf.Tensor1D {
    return this.keep(tf.tensor1d(t.data));
  }

  /** Linear weight [out, in] -> [in, out]. */
  linearWeight(name: string, t: DenseTensor): tf.Tensor2D {
    if (t.shape.length !== 2) throw new ModelError('ShapeMismatch', `\`${name}\` must be 2-d [out, in], got [${t.shape.join(', ')}]`);
    return this.keep(tf.tidy(() => tf.transpose(tf.tensor2d(t.data, [t.shape[0], t.shape[1]]))));
  }

  /** Conv weight [out, in, kh, kw] -> [kh, kw, in, out]. */
  convWeight(name: string, t: DenseTensor): tf.Tensor4D {
    if (t.shape.length !== 4) throw new ModelError('ShapeMismatch', `\`${name}\` must be 4-d [out, in, kh, kw], got [${t.shape.join(', ')}]`);
    const [o, i, h, w] = t.shape;
    return this.keep(tf.tidy(() => tf.transpose(tf.tensor4d(t.data, [o, i, h, w]), [2, 3, 1, 0])));
  }

  addBatchNorm(m: TorchModule): BatchNormParams {
    const p = m.params;
    const size = p.get('running_mean')!.shape[0];
    const rec: BatchNormParams = {
      gamma: p.has('weight') ? this.vector(p.get('weight')!) : undefined,
      beta: p.has('bias') ? this.vector(p.get('bias')!) : undefined,
      mean: this.vector(p.get('running_mean')!),
      variance: this.vector(p.get('running_var')!),
      size,
    };
    this.bn.set(m.name, rec);
    return rec;
  }

  /** Replaces a BatchNorm layer's running statistics (BN reset). */
  setBatchNormStats(layer: string, mean: Float32Array, variance: Float32Array): void {
    const rec = this.bn.get(layer);
    if (!rec) throw new ModelError('ShapeMismatch', `no batchnorm layer \`${layer}\``);
    if (mean.length !== rec.size || variance.length !== rec.size) throw new ModelError('ShapeMismatch', `batchnorm \`${layer}\` has ${rec.size} channels, got ${mean.length}`);
    rec.mean.dispose();
    rec.variance.dispose();
    rec.mean = tf.tensor1d(mean);
    rec.variance = tf.tensor1d(variance);
    this.owned.push(rec.mean, rec.variance);
  }

  dispose(): void {
    for (const t of this.owned) if (!t.isDisposed) t.dispose();
    this.owned.length = 0;
  }
}
