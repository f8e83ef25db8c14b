/**
 * Where the weights are in a loaded `torch.save` object: the state dict itself, or a training
 * checkpoint that nests it (`state_dict` in Lightning, `model` / `model_state_dict` / `module` in
 * hand-written loops). The tensor dict is the one holding the most tensors, preferring the usual
 * keys, never under an optimizer's state. A wrapper prefix shared by every name (`module.` from
 * DataParallel, `model.` from a Lightning module) is removed so names match the bare model's.
 */
import { PickleDict, type PickleValue } from './pickle';

export interface FoundTensors<T> {
  readonly tensors: ReadonlyMap<string, T>;
  /** Where they were, in words: "the top level", "`state_dict`, prefix `model.` removed". */
  readonly where: string;
  /** Keys from the root to the dict (empty: the root). */
  readonly path: readonly string[];
  readonly prefixRemoved?: string;
}

const PREFERRED = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'weights'];
const SKIPPED = /^(optimizer|optimizer_states?|optim|opt_state|lr_schedulers?|scheduler|callbacks|loops)$/i;
const PREFIXES = ['module.', 'model.'];

function tensorsOf<T>(dict: PickleDict, isTensor: (v: PickleValue) => v is T & PickleValue): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of dict.entries) if (typeof k === 'string' && isTensor(v)) out.set(k, v);
  return out;
}

/** Finds the tensor dict under `root` (a breadth-first walk with a visited set: cycles end). */
export function findTensorDict<T>(root: PickleValue, isTensor: (v: PickleValue) => v is T & PickleValue): FoundTensors<T> | undefined {
  if (!(root instanceof PickleDict)) return undefined;
  let best: { dict: PickleDict; path: string[]; count: number; rank: number } | undefined;
  const seen = new Set<PickleDict>();
  const queue: { dict: PickleDict; path: string[] }[] = [{ dict: root, path: [] }];
  while (queue.length > 0) {
    const { dict, path } = queue.shift()!;
    if (seen.has(dict)) continue;
    seen.add(dict);
    const count = tensorsOf(dict, isTensor).size;
    const last = path.at(-1);
    // The root and the usual keys win over an equally large dict elsewhere (e.g. an EMA copy).
    const rank = path.length === 0 ? 2 : last !== undefined && PREFERRED.includes(last) ? 1 : 0;
    if (count > 0 && (!best || count > best.count || (count === best.count && rank > best.rank))) best = { dict, path, count, rank };
    for (const [k, v] of dict.entries) {
      if (v instanceof PickleDict && typeof k === 'string' && !SKIPPED.test(k) && path.length < 8) queue.push({ dict: v, path: [...path, k] });
    }
  }
  if (!best) return undefined;
  let tensors = tensorsOf(best.dict, isTensor);
  let prefixRemoved: string | undefined;
  for (const prefix of PREFIXES) {
    const names = [...tensors.keys()];
    // `model.` only for a nested dict: a Hugging Face state dict at the top level keeps its names.
    if (prefix === 'model.' && best.path.length === 0) continue;
    if (names.length > 0 && names.every((n) => n.startsWith(prefix) && n.length > prefix.length)) {
      tensors = new Map([...tensors].map(([n, t]) => [n.slice(prefix.length), t]));
      prefixRemoved = (prefixRemoved ?? '') + prefix;
    }
  }
  const at = best.path.length === 0 ? 'the top level' : best.path.map((k) => `\`${k}\``).join(' > ');
  return { tensors, path: best.path, where: `${at}${prefixRemoved ? `, prefix \`${prefixRemoved}\` removed` : ''}`, ...(prefixRemoved ? { prefixRemoved } : {}) };
}
