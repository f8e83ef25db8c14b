/**
 * Flax names and layouts seen as PyTorch's, so one set of inference rules serves both:
 * `Dense_0/kernel` [in, out] is `Dense_0.weight` [out, in], a Conv kernel HWIO is OIHW,
 * BatchNorm `scale`/`bias` are `weight`/`bias` and its `batch_stats` `mean`/`var` are
 * `running_mean`/`running_var`. A collection prefix (`params/`, `batch_stats/`) is dropped so a
 * layer's parameters and statistics form one module. The Git Re-Basin paper's ResNet-20
 * (`blockgroups_G/blocks_B/{conv1,norm1,conv2,norm2,shortcut/layers_0|1}`, `conv1`, `norm1`,
 * `dense`; github.com/samuela/git-re-basin src/resnet20.py) is named as the CIFAR ResNet ports
 * are (`layer{G+1}.B.{conv1,bn1,...,shortcut.0|1}`, `bn1`, `linear`). Axes inferred on that view
 * are mapped back to the Flax tensors axis by axis.
 */
import type { AxisEntry, DenseTensor, TensorMap } from '../checkpoint';
import type { AxesTable, TensorShape } from './shapes';

const COLLECTIONS = new Set(['params', 'batch_stats']);
const LEAF_AS_TORCH: Readonly<Record<string, string>> = { kernel: 'weight', bias: 'bias', scale: 'weight', mean: 'running_mean', var: 'running_var', embedding: 'weight' };

/** The paper's ResNet module paths as the CIFAR ports name them (`/`-paths in, `.`-paths out). */
function resnetModule(parts: readonly string[]): string[] | undefined {
  const path = parts.join('/');
  const block = /^blockgroups_(\d+)\/blocks_(\d+)\/(conv[12]|norm[12]|shortcut\/layers_[01])$/.exec(path);
  if (block) {
    const inner = block[3].replace(/^norm/, 'bn').replace(/^shortcut\/layers_/, 'shortcut.');
    return [`layer${Number(block[1]) + 1}`, block[2], inner];
  }
  const top: Readonly<Record<string, string>> = { conv1: 'conv1', norm1: 'bn1', dense: 'linear' };
  return Object.hasOwn(top, path) ? [top[path]] : undefined;
}

/** The Git Re-Basin paper's Flax ResNet naming (`blockgroups_G/blocks_B/conv1`). */
export function isPaperResnet(tensors: readonly TensorShape[]): boolean {
  return tensors.some((t) => /(^|\/)blockgroups_\d+\/blocks_\d+\/conv1\/kernel$/.test(t.name));
}

/** Flax axis i reads torch-view axis ORDER[rank][i]. */
const ORDER: Readonly<Record<number, readonly number[]>> = { 2: [1, 0], 3: [2, 1, 0], 4: [2, 3, 1, 0], 5: [2, 3, 4, 1, 0] };

export interface FlaxView {
  /** The tensors as PyTorch would name and shape them. */
  readonly tensors: readonly TensorShape[];
  /** The inferred axes mapped back onto the Flax names and layouts. */
  toFlax(axes: Readonly<AxesTable>): AxesTable;
}

/** True when the names are Flax's: `/`-separated paths with at least one `kernel`, every leaf a known parameter. */
export function looksFlax(tensors: readonly TensorShape[]): boolean {
  if (tensors.length === 0) return false;
  return tensors.some((t) => t.name.endsWith('/kernel')) && tensors.every((t) => t.name.includes('/') && Object.hasOwn(LEAF_AS_TORCH, t.name.slice(t.name.lastIndexOf('/') + 1)));
}

/** The torch-named view of Flax tensors (call when `looksFlax`). */
export function flaxAsTorch(tensors: readonly TensorShape[]): FlaxView {
  const back = new Map<string, { flax: TensorShape; order?: readonly number[] }>();
  const view: TensorShape[] = [];
  const resnet = isPaperResnet(tensors);
  for (const t of tensors) {
    let parts = t.name.split('/');
    const leaf = parts.pop()!;
    if (parts.length > 1 && COLLECTIONS.has(parts[0])) parts.shift();
    if (resnet) parts = resnetModule(parts) ?? parts;
    const kernel = leaf === 'kernel' && t.shape.length >= 2 ? ORDER[t.shape.length] : undefined;
    // Flax axis i is view axis order[i]; so view axis order[i] has size shape[i].
    let shape: number[] = [...t.shape];
    if (kernel) {
      shape = new Array<number>(t.shape.length);
      kernel.forEach((v, i) => (shape[v] = t.shape[i]));
    }
    const name = `${parts.join('.')}.${LEAF_AS_TORCH[leaf]}`;
    back.set(name, { flax: t, ...(kernel ? { order: kernel } : {}) });
    view.push({ name, shape });
  }
  return {
    tensors: view,
    toFlax(axes) {
      const out: AxesTable = {};
      for (const [name, entries] of Object.entries(axes)) {
        const b = back.get(name);
        if (!b) continue;
        const order = b.order;
        out[b.flax.name] = order ? order.map((v): AxisEntry => entries[v] ?? null) : [...entries];
      }
      return out;
    },
  };
}

/**
 * Flax tensors with their data in PyTorch's layout, for the forward passes (which read PyTorch
 * state dicts): kernels transposed to [out, in] / OIHW, names as `flaxAsTorch` gives them.
 */
export function flaxTensorsAsTorch(tensors: TensorMap): Map<string, DenseTensor> {
  const list = [...tensors].map(([name, t]) => ({ name, shape: t.shape }));
  const view = flaxAsTorch(list).tensors;
  const out = new Map<string, DenseTensor>();
  list.forEach((t, k) => {
    const src = tensors.get(t.name)!;
    const order = t.name.endsWith('/kernel') ? ORDER[t.shape.length] : undefined;
    out.set(view[k].name, { shape: view[k].shape, data: order ? transpose(src.data, t.shape, view[k].shape, order) : src.data });
  });
  return out;
}

/** Row-major transpose: view axis order[i] is source axis i. */
function transpose(data: Float32Array, shape: readonly number[], viewShape: readonly number[], order: readonly number[]): Float32Array {
  const rank = shape.length;
  const srcStride = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) (srcStride[i] = s), (s *= shape[i]);
  // The source stride of each view axis.
  const stride = new Array<number>(rank);
  order.forEach((v, i) => (stride[v] = srcStride[i]));
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      src += stride[d];
      if (index[d] < viewShape[d]) break;
      src -= stride[d] * viewShape[d];
      index[d] = 0;
    }
  }
  return out;
}
