/**
 * Spec rules for Mixtral's mixture-of-experts layers, on the stacked view of the experts
 * (src/core/moe/expertStack.ts: `<layer>.block_sparse_moe.experts.*.w1|w3.weight` [E x I, d],
 * `...experts.*.w2.weight` [d, E x I]), beside the Llama rules for everything else.
 *
 * Symmetries of a layer `out = sum over the top-k experts e of p_e(x) . w2_e(SiLU(w1_e x) * w3_e x)`
 * with `p = renormalised top-k of softmax(gate x)`:
 * - the order of the experts, `P_<layer>.experts`: permuting the router's rows permutes the
 *   softmax and the top-k choice with them, so the same experts are chosen with the same
 *   weights when the experts' tensors move along (router [E, d] rows, the stacked axis's blocks);
 * - each expert's hidden units, `P_<layer>.expert_mlp` (one permutation per expert: w1 and w3
 *   rows, w2 columns of that expert);
 * - the residual stream: the router's and w1 / w3's input, w2's output.
 * On the stacked axis this is a block axis [experts, units] with the expert order outside and the
 * units inside each block, as attention heads are: weight matching then pairs experts by their
 * best within-expert matching and matches the units inside each pair (headMatching.ts).
 */
import type { AxisEntry } from '../checkpoint';
import { parseStackedName } from '../moe/expertStack';
import type { TensorShape } from './shapes';

const GATE = /^(.*)\.block_sparse_moe\.gate\.weight$/;

/** The permutation names of the layer whose tensors start with `layer` (`model.layers.0`). */
function expertPermNames(layer: string): { experts: string; units: string } {
  return { experts: `P_${layer}.experts`, units: `P_${layer}.expert_mlp` };
}

/** True for the experts' order of a layer (the outer permutation of its expert blocks). */
export function isExpertPerm(name: string): boolean {
  return /^P_.*\.experts$/.test(name);
}

/**
 * The axes of a Mixtral router or stacked expert tensor (full name), or undefined for any other
 * tensor. `residual` names the stream's permutation; the expert count comes from the layer's
 * router [E, d] (undefined when it is missing or does not divide the stacked axis: the tensor is
 * then left for the caller to refuse).
 */
export function expertAxes(t: TensorShape, tensors: readonly TensorShape[], residual: string): AxisEntry[] | undefined {
  if (t.shape.length !== 2) return undefined;
  const gate = GATE.exec(t.name);
  if (gate) {
    const { experts } = expertPermNames(gate[1]);
    return [{ parts: [{ split: [t.shape[0], 1], perms: [experts, null] }] }, residual];
  }
  const stacked = parseStackedName(t.name);
  if (!stacked) return undefined;
  const layer = stacked.experts.replace(/\.block_sparse_moe\.experts$/, '');
  const router = tensors.find((x) => x.name === `${layer}.block_sparse_moe.gate.weight`);
  const n = router?.shape[0];
  const unitsAxis = stacked.w === 'w2' ? 1 : 0;
  const width = t.shape[unitsAxis];
  if (n === undefined || width % n !== 0) return undefined;
  const { experts, units } = expertPermNames(layer);
  const block: AxisEntry = { parts: [{ split: [n, width / n], perms: [experts, units] }] };
  return unitsAxis === 0 ? [block, residual] : [residual, block];
}

/** The spec note for a model with experts. */
export function expertNote(tensors: readonly TensorShape[]): string | undefined {
  const router = tensors.find((t) => GATE.test(t.name));
  if (!router) return undefined;
  return `mixture of experts: the ${router.shape[0]} experts of each layer permute (\`P_<layer>.experts\`, the router's rows with them), and each expert's hidden units inside it (\`P_<layer>.expert_mlp\`)`;
}
