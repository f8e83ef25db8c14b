/**
 * Inference for feed-forward stacks: MLPs (chains of Linear layers) and VGG-style conv stacks
 * with BatchNorm followed by Linear classifier layers (Git Re-Basin's `mlp_permutation_spec`
 * and `vgg16_permutation_spec`, found from names and shapes instead of written by hand).
 *
 * Layers are ordered naturally by name (`layers.2` before `layers.10`), with module groups
 * holding convolutions (`features`) before the others (`classifier`), and the order is
 * verified by shape chaining: outputs of layer i = inputs of layer i+1.
 * The hidden units of a layer get the permutation `P_<layer module>` (e.g. `P_layers.0`,
 * `P_fc1`, `P_features.3`): named after the layer whose outputs it permutes. A norm module
 * follows the layer before it. The first input and the last output are never permuted.
 *
 * Flatten boundary (conv -> Linear): PermSpec acts on whole axes. When the Linear's input
 * size equals the channel count (global pooling, or 1x1 spatial), it reads the last conv's
 * permutation; when it is channels x spatial, the last conv's channels are left unpermuted
 * and a note says so (a permutation of a reshaped axis is not expressible).
 */
import { SpecError, HAND_WRITTEN_SPEC_HINT } from './errors';
import { classifyModule, groupModules, layerAxes, normAxes, normSize, type Module } from './modules';
import { naturalCompare, formatShape, type AxesTable, type TensorShape } from './shapes';

export interface SequentialResult {
  readonly family: 'mlp' | 'vgg';
  readonly axes: AxesTable;
  readonly notes: string[];
}

const SOURCE = 'inferred spec';

export function permName(module: string): string {
  return `P_${module}`;
}

/** True when every module is a Linear/conv layer or a norm (the shape of an MLP or VGG). */
export function looksSequential(tensors: readonly TensorShape[]): boolean {
  const modules = [...groupModules(tensors).values()];
  return modules.some((m) => classifyModule(m) === 'linear' || classifyModule(m) === 'conv');
}

/** `vgg` when the stack has a conv layer, else `mlp` (by inferSequential's rule where it succeeds). */
export function sequentialKind(tensors: readonly TensorShape[]): 'mlp' | 'vgg' {
  try {
    return inferSequential(tensors).family;
  } catch {
    // Inference will say what it cannot place; detection only needs the layer kinds.
    return [...groupModules(tensors).values()].some((m) => classifyModule(m) === 'conv') ? 'vgg' : 'mlp';
  }
}

export function inferSequential(tensors: readonly TensorShape[]): SequentialResult {
  const modules = [...groupModules(tensors).values()];
  const kinds = new Map(modules.map((m) => [m.name, classifyModule(m)]));
  const other = modules.filter((m) => kinds.get(m.name) === 'other');
  if (other.length > 0) {
    const names = other.flatMap((m) => [...m.params.values()].map((t) => `\`${t.name}\` ${formatShape(t.shape)}`));
    throw new SpecError(
      'Unplaceable',
      `${SOURCE}: cannot place ${names.slice(0, 6).join(', ')}${names.length > 6 ? ` and ${names.length - 6} more` : ''} in an mlp/vgg chain (not a linear, conv or norm layer); ${HAND_WRITTEN_SPEC_HINT}`,
      SOURCE,
      other[0].params.values().next().value?.name,
    );
  }
  // Groups (first name segment) that hold convolutions come first: `features` before `classifier`.
  const group = (m: Module): string => m.name.split('.')[0];
  const convGroups = new Set(modules.filter((m) => kinds.get(m.name) === 'conv').map(group));
  let layers = modules
    .filter((m) => kinds.get(m.name) === 'linear' || kinds.get(m.name) === 'conv')
    .sort((x, y) => (convGroups.has(group(x)) ? 0 : 1) - (convGroups.has(group(y)) ? 0 : 1) || naturalCompare(x.name, y.name));
  const norms = modules.filter((m) => kinds.get(m.name) === 'norm');
  const notes: string[] = [];
  // Names like `input`/`hidden`/`output` do not sort into the forward order; a plain MLP's
  // shapes can still fix it when exactly one chain of layers fits.
  if (convGroups.size === 0 && !chains(layers)) {
    const byShape = uniqueShapeChain(layers);
    if (byShape) {
      layers = byShape;
      notes.push(`layer names do not sort into a chain; ordered by shapes: ${byShape.map((m) => `\`${m.name}\``).join(' -> ')}`);
    }
  }

  const axes: AxesTable = {};
  const nulled = new Set<string>();
  let prev: { module: Module; perm: string; out: number; kind: 'linear' | 'conv' } | null = null;
  const lastLayer = layers[layers.length - 1];
  for (const m of layers) {
    const kind = kinds.get(m.name) === 'conv' ? 'conv' : 'linear';
    const weight = m.params.get('weight');
    if (!weight) continue;
    const [out, inp] = weight.shape;
    let inPerm: string | null = null;
    if (prev) {
      if (prev.kind === 'linear' && kind === 'conv') {
        throw new SpecError('Unplaceable', `${SOURCE}: conv \`${weight.name}\` comes after linear \`${prev.module.name}\`; ${HAND_WRITTEN_SPEC_HINT}`, SOURCE, weight.name);
      }
      if (inp === prev.out) {
        inPerm = prev.perm;
      } else if (prev.kind === 'conv' && kind === 'linear' && inp % prev.out === 0) {
        // Flatten of channels x spatial: a permutation of whole channels would act on a reshaped axis.
        nulled.add(prev.perm);
        notes.push(
          `\`${weight.name}\` reads ${inp} = ${prev.out} channels x ${inp / prev.out} spatial positions of \`${prev.module.name}\`: ` +
            `the channels of \`${prev.module.name}\` are left unpermuted (a spec permutes whole axes)`,
        );
      } else {
        throw new SpecError(
          'Unplaceable',
          `${SOURCE}: \`${weight.name}\` ${formatShape(weight.shape)} takes ${inp} inputs but the layer before it in name order, \`${prev.module.name}\`, gives ${prev.out}; ${HAND_WRITTEN_SPEC_HINT}`,
          SOURCE,
          weight.name,
        );
      }
    }
    const perm = permName(m.name);
    if (m === lastLayer) nulled.add(perm);
    layerAxes(m, perm, inPerm, axes);
    prev = { module: m, perm, out, kind };
  }
  for (const norm of norms) {
    const owner = normOwner(norm, layers);
    if (!owner) {
      throw new SpecError('Unplaceable', `${SOURCE}: cannot tell which layer norm \`${norm.name}\` follows; ${HAND_WRITTEN_SPEC_HINT}`, SOURCE, norm.name);
    }
    const out = dims(owner)[0];
    if (normSize(norm) !== out) {
      throw new SpecError(
        'Unplaceable',
        `${SOURCE}: norm \`${norm.name}\` has ${normSize(norm)} channels but the layer it follows, \`${owner.name}\`, gives ${out}; ${HAND_WRITTEN_SPEC_HINT}`,
        SOURCE,
        norm.name,
      );
    }
    normAxes(norm, permName(owner.name), axes);
  }
  for (const entry of Object.values(axes)) {
    entry.forEach((p, i) => {
      if (typeof p === 'string' && nulled.has(p)) entry[i] = null;
    });
  }
  const family = layers.some((m) => kinds.get(m.name) === 'conv') ? 'vgg' : 'mlp';
  return { family, axes, notes };
}

/**
 * The layer a norm module normalises: in a Sequential (`features.5` after `features.4`) the
 * nearest earlier index under the same parent; with named modules the layer under the same
 * parent with the same number (`bn1` after `conv1`, `norm2` after `fc2`; when `conv1` and `fc1`
 * both exist, the one with the norm's channel count).
 */
function normOwner(norm: Module, layers: readonly Module[]): Module | undefined {
  const dot = norm.name.lastIndexOf('.');
  const parent = dot < 0 ? '' : norm.name.slice(0, dot);
  const last = norm.name.slice(dot + 1);
  const siblings = layers.filter((l) => (l.name.lastIndexOf('.') < 0 ? '' : l.name.slice(0, l.name.lastIndexOf('.'))) === parent);
  const lastOf = (l: Module): string => l.name.slice(l.name.lastIndexOf('.') + 1);
  if (/^\d+$/.test(last)) {
    const before = siblings.filter((l) => /^\d+$/.test(lastOf(l)) && Number(lastOf(l)) < Number(last));
    return before.sort((x, y) => Number(lastOf(y)) - Number(lastOf(x)))[0];
  }
  const num = /(\d+)$/.exec(last)?.[1];
  if (num === undefined) return undefined;
  const same = siblings.filter((l) => /(\d+)$/.exec(lastOf(l))?.[1] === num);
  if (same.length <= 1) return same[0];
  // `bn1` with both `conv1` and `fc1`: the channel count decides, when it can.
  const sized = same.filter((l) => dims(l)[0] === normSize(norm));
  return sized.length === 1 ? sized[0] : undefined;
}

function dims(m: Module): [number, number] {
  const w = m.params.get('weight');
  return w ? [w.shape[0], w.shape[1]] : [0, 0];
}

/** True when each layer's inputs match the previous layer's outputs. */
function chains(layers: readonly Module[]): boolean {
  return layers.every((m, i) => i === 0 || dims(m)[1] === dims(layers[i - 1])[0]);
}

/** The only order of the layers whose shapes chain, or null when there is none or more than one. */
function uniqueShapeChain(layers: readonly Module[]): Module[] | null {
  const found: Module[][] = [];
  const used = new Set<Module>();
  const path: Module[] = [];
  let budget = 100_000; // many same-shape layers make the search explode; give up, it is ambiguous anyway
  const extend = (): void => {
    if (found.length > 1 || --budget < 0) return;
    if (path.length === layers.length) {
      found.push([...path]);
      return;
    }
    for (const m of layers) {
      if (used.has(m)) continue;
      if (path.length > 0 && dims(m)[1] !== dims(path[path.length - 1])[0]) continue;
      used.add(m);
      path.push(m);
      extend();
      path.pop();
      used.delete(m);
    }
  };
  extend();
  return found.length === 1 && budget >= 0 ? found[0] : null;
}
