/**
 * Groups tensors into modules (`features.3.weight` -> module `features.3`, param `weight`)
 * and classifies each by its parameters: a layer with a weight matrix or kernel, or a
 * per-channel norm (BatchNorm, LayerNorm, RMSNorm). Shared by the inference families.
 */
import type { AxesTable, TensorShape } from './shapes';

export interface Module {
  readonly name: string;
  readonly params: Map<string, TensorShape>;
}

export type ModuleKind = 'linear' | 'conv' | 'norm' | 'other';

export const NORM_PARAMS = new Set(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);

export function splitName(name: string): { module: string; param: string } {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? { module: '', param: name } : { module: name.slice(0, dot), param: name.slice(dot + 1) };
}

export function groupModules(tensors: readonly TensorShape[]): Map<string, Module> {
  const out = new Map<string, Module>();
  for (const t of tensors) {
    const { module, param } = splitName(t.name);
    let m = out.get(module);
    if (!m) {
      m = { name: module, params: new Map() };
      out.set(module, m);
    }
    m.params.set(param, t);
  }
  return out;
}

export function classifyModule(m: Module): ModuleKind {
  const w = m.params.get('weight');
  const onlyWeightBias = [...m.params.keys()].every((p) => p === 'weight' || p === 'bias');
  if (w && onlyWeightBias && w.shape.length === 2) return 'linear';
  if (w && onlyWeightBias && w.shape.length >= 3) return 'conv';
  const channel = w ?? m.params.get('running_mean');
  if (channel && channel.shape.length === 1 && [...m.params.keys()].every((p) => NORM_PARAMS.has(p))) {
    const ok = [...m.params.entries()].every(([p, t]) =>
      p === 'num_batches_tracked' ? t.shape.length === 0 || (t.shape.length === 1 && t.shape[0] === 1) : t.shape.length === 1 && t.shape[0] === channel.shape[0],
    );
    if (ok) return 'norm';
  }
  return 'other';
}

/** Channel count of a norm module. */
export function normSize(m: Module): number {
  const t = m.params.get('weight') ?? m.params.get('running_mean') ?? m.params.get('bias');
  return t ? t.shape[0] : 0;
}

/** Axes of a norm module's tensors: every per-channel vector gets `perm`, the step counter none. */
export function normAxes(m: Module, perm: string | null, axes: AxesTable): void {
  for (const [p, t] of m.params) axes[t.name] = p === 'num_batches_tracked' ? t.shape.map(() => null) : [perm];
}

/** Axes of a linear/conv module: weight [out, in, ...kernel], bias [out]. */
export function layerAxes(m: Module, out: string | null, inp: string | null, axes: AxesTable): void {
  for (const [p, t] of m.params) {
    if (p === 'bias') axes[t.name] = [out];
    else axes[t.name] = t.shape.map((_, i) => (i === 0 ? out : i === 1 ? inp : null));
  }
}
