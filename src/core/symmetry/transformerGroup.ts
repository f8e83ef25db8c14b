/**
 * The generalized symmetry group of a folded pre-norm transformer (GPT-2, Llama family, Mixtral, ViT; Theus et al.,
 * "Generalized Linear Mode Connectivity for Transformers", arXiv 2506.22712), acting on its
 * weights: an orthogonal map R of the residual stream, per key/value head an orthogonal map M of
 * the query/key product (W_Q M, W_K M: M^-T = M) and an orthogonal map N of value/output (W_V N,
 * W_O N^T), and a permutation of each MLP's units. Every element maps a model to one computing
 * the same function.
 *
 * Norms: an orthogonal R commutes with RMSNorm and LayerNorm only at unit gain, so the weights
 * must be folded first (transformerFold.ts; checked here). LayerNorm also subtracts the mean, the
 * component along the all-ones direction: R commutes with that only if it fixes the direction
 * (R 1 = 1), so for GPT-2 R is restricted to those maps (Procrustes has the constrained form,
 * procrustesFixing). The other way out, centering every writer and turning LayerNorm into RMSNorm
 * (SliceGPT), would change B's architecture, and the output must stay B's class with B's names.
 * Rotary positions (Llama family): M must commute with every position's rotation, i.e. be a 2 x 2
 * rotation within each frequency pair (rotate-half layout: dimensions e and e + head_dim/2);
 * anything else is refused. Grouped-query attention: one M and one N per key/value head, shared
 * by the query heads that read it.
 * Heads: a permutation of each layer's heads (q/k/v output rows and o input columns move as blocks
 * of head_dim). Under grouped-query attention it moves whole groups (a permutation of the
 * key/value heads, their query heads with them) and reorders the query heads within each group;
 * query heads never change group. Heads are permuted first, then the per-head maps act on the new
 * head order.
 * Mixture of experts (Mixtral): the MLP permutation acts on the experts' stacked units; it must
 * move experts as wholes (units permute within an expert), and the router's rows follow the
 * experts' new order. The router reads the stream, so R acts on its input like any reader's.
 * ViT: the patch projection writes the stream (its output channels take R), as do the CLS token
 * and position embeddings; the classifier reads it after the final norm.
 */
import type { DenseTensor, TensorMap } from '../checkpoint';
import { shuffleInPlace } from '../matching/prng';
import { commutesWithRotary, orthogonalityError, permuteAxis, randomOrthogonal, randomOrthogonalFixing, randomRotaryCommuting, rotateAxis } from './orthogonal';
import { featureAxis, SymmetryUnsupported, type LinearLayer, type OutputSlice, type TransformerLayout } from './transformerLayout';

export interface TransformerGroupElement {
  /** hidden x hidden orthogonal, row-major; the stream x becomes x R. */
  readonly residual?: Float64Array;
  /** [layer][kvHead]: head_dim x head_dim orthogonal maps of the query/key product. */
  readonly qk?: readonly (readonly Float64Array[])[];
  /** [layer][kvHead]: head_dim x head_dim orthogonal maps of value/output. */
  readonly vo?: readonly (readonly Float64Array[])[];
  /**
   * [layer]: new query head h is old query head perm[h]; the query heads of one key/value head stay
   * together (new group j is one old group, whose key/value head moves with it). Applied before qk/vo.
   */
  readonly heads?: readonly (readonly number[])[];
  /** [layer]: new MLP unit j is old unit perm[j]. */
  readonly mlp?: readonly (readonly number[])[];
}

/** The weights of g . A for folded weights A (unit-gain norms); the input map is not changed. */
export function applyTransformerGroup(tensors: TensorMap, layout: TransformerLayout, g: TransformerGroupElement): Map<string, DenseTensor> {
  const out = new Map(tensors);
  const get = (name: string): DenseTensor => {
    const t = out.get(name);
    if (!t) throw new SymmetryUnsupported(`tensor \`${name}\` is missing`);
    return t;
  };
  const { hidden: d, headDim: hd, heads, kvHeads } = layout;
  const perGroup = heads / kvHeads;
  const update = (name: string | undefined, f: (t: DenseTensor) => DenseTensor) => {
    if (name) out.set(name, f(get(name)));
  };
  if (g.residual) {
    const r = g.residual;
    checkResidual(r, layout, get);
    for (const e of layout.embeddings) update(e, (t) => rotateAxis(t, 1, 0, r, d));
    for (const w of layout.inputWriters ?? []) {
      update(w.weight, (t) => rotateAxis(t, featureAxis(w, 'out'), 0, r, d));
      update(w.bias, (t) => rotateAxis(t, 0, 0, r, d));
    }
    if (!layout.tied) update(layout.head.weight, (t) => rotateAxis(t, featureAxis(layout.head, 'in'), 0, r, d));
    update(layout.finalNorm.bias, (t) => rotateAxis(t, 0, 0, r, d));
    for (const b of layout.blocks) {
      for (const site of [b.attnNorm, b.mlpNorm]) {
        update(site.bias, (t) => rotateAxis(t, 0, 0, r, d));
        for (const reader of site.readers) update(reader.weight, (t) => rotateAxis(t, featureAxis(reader, 'in'), 0, r, d));
      }
      for (const writer of [b.o, b.mlpOut]) {
        update(writer.weight, (t) => rotateAxis(t, featureAxis(writer, 'out'), 0, r, d));
        update(writer.bias, (t) => rotateAxis(t, 0, 0, r, d));
      }
    }
  }
  layout.blocks.forEach((b, layer) => {
    const headPerm = g.heads?.[layer];
    if (headPerm) {
      const kvPerm = kvHeadPermutation(headPerm, heads, kvHeads, layer);
      const q = blockFeatures(headPerm, hd);
      const kv = blockFeatures(kvPerm, hd);
      const move = (s: OutputSlice, perm: number[]) => {
        update(s.layer.weight, (t) => permuteAxis(t, featureAxis(s.layer, 'out'), s.offset, perm));
        update(s.layer.bias, (t) => permuteAxis(t, 0, s.offset, perm));
      };
      move(b.q, q);
      move(b.k, kv);
      move(b.v, kv);
      update(b.o.weight, (t) => permuteAxis(t, featureAxis(b.o, 'in'), 0, q));
    }
    const outputs = (layer: LinearLayer, start: number, q: Float64Array) => {
      update(layer.weight, (t) => rotateAxis(t, featureAxis(layer, 'out'), start, q, hd));
      update(layer.bias, (t) => rotateAxis(t, 0, start, q, hd));
    };
    for (let j = 0; j < kvHeads; j++) {
      const m = g.qk?.[layer]?.[j];
      if (m) {
        checkHeadMap(m, hd, `query/key map of layer ${layer}, head ${j}`);
        if (layout.rotary && !commutesWithRotary(m, hd)) {
          throw new SymmetryUnsupported(`the query/key map of layer ${layer}, head ${j} does not commute with rotary positions (only 2 x 2 rotations within each frequency pair do)`);
        }
        for (let h = j * perGroup; h < (j + 1) * perGroup; h++) outputs(b.q.layer, b.q.offset + h * hd, m);
        outputs(b.k.layer, b.k.offset + j * hd, m);
      }
      const n = g.vo?.[layer]?.[j];
      if (n) {
        checkHeadMap(n, hd, `value/output map of layer ${layer}, head ${j}`);
        outputs(b.v.layer, b.v.offset + j * hd, n);
        for (let h = j * perGroup; h < (j + 1) * perGroup; h++) update(b.o.weight, (t) => rotateAxis(t, featureAxis(b.o, 'in'), h * hd, n, hd));
      }
    }
    const perm = g.mlp?.[layer];
    if (perm) {
      if (perm.length !== b.mlpWidth) throw new SymmetryUnsupported(`the MLP permutation of layer ${layer} has ${perm.length} units, the MLP ${b.mlpWidth}`);
      if (b.experts) {
        const router = b.experts.router;
        const order = expertPermutation(perm, b.experts.count, layer);
        update(router.weight, (t) => permuteAxis(t, featureAxis(router, 'out'), 0, order));
        update(router.bias, (t) => permuteAxis(t, 0, 0, order));
      }
      for (const l of b.mlpIn) {
        update(l.weight, (t) => permuteAxis(t, featureAxis(l, 'out'), 0, perm));
        update(l.bias, (t) => permuteAxis(t, 0, 0, perm));
      }
      update(b.mlpOut.weight, (t) => permuteAxis(t, featureAxis(b.mlpOut, 'in'), 0, perm));
    }
  });
  return out;
}

/** A random element: residual (fixing the all-ones direction under LayerNorm), head permutations, per-head maps (rotary-safe), MLP permutations (experts as wholes). */
export function randomTransformerGroupElement(layout: TransformerLayout, random: () => number): Required<TransformerGroupElement> {
  const { hidden: d, headDim: hd, kvHeads } = layout;
  const residual = layout.centered ? randomOrthogonalFixing(new Float64Array(d).fill(1 / Math.sqrt(d)), d, random) : randomOrthogonal(d, random);
  const heads = () => layout.blocks.map(() => Array.from({ length: kvHeads }, () => (layout.rotary ? randomRotaryCommuting(hd, random) : randomOrthogonal(hd, random))));
  const qk = heads();
  const vo = layout.blocks.map(() => Array.from({ length: kvHeads }, () => randomOrthogonal(hd, random)));
  const perGroup = layout.heads / kvHeads;
  const headPerms = layout.blocks.map(() =>
    shuffleInPlace(Array.from({ length: kvHeads }, (_, i) => i), random).flatMap((old) => shuffleInPlace(Array.from({ length: perGroup }, (_, i) => old * perGroup + i), random)),
  );
  const mlp = layout.blocks.map((b) => {
    if (!b.experts) return shuffleInPlace(Array.from({ length: b.mlpWidth }, (_, i) => i), random);
    // Experts as wholes, then the units within each.
    const width = b.mlpWidth / b.experts.count;
    return shuffleInPlace(Array.from({ length: b.experts.count }, (_, e) => e), random).flatMap((old) => shuffleInPlace(Array.from({ length: width }, (_, u) => old * width + u), random));
  });
  return { residual, heads: headPerms, qk, vo, mlp };
}

/** The key/value head permutation a query head permutation moves with; refuses one that splits a group. */
function kvHeadPermutation(perm: readonly number[], heads: number, kvHeads: number, layer: number): number[] {
  const perGroup = heads / kvHeads;
  const sorted = [...perm].sort((x, y) => x - y);
  if (perm.length !== heads || sorted.some((x, i) => x !== i)) throw new SymmetryUnsupported(`the head permutation of layer ${layer} is not a permutation of its ${heads} heads`);
  return Array.from({ length: kvHeads }, (_, j) => {
    const group = Math.floor(perm[j * perGroup] / perGroup);
    for (let i = 0; i < perGroup; i++) {
      if (Math.floor(perm[j * perGroup + i] / perGroup) !== group) throw new SymmetryUnsupported(`the head permutation of layer ${layer} splits the query heads of key/value head ${group}`);
    }
    return group;
  });
}

/** The expert order a permutation of a mixture's stacked units moves with; refuses one that splits an expert. */
function expertPermutation(perm: readonly number[], count: number, layer: number): number[] {
  const width = perm.length / count;
  return Array.from({ length: count }, (_, e) => {
    const old = Math.floor(perm[e * width] / width);
    for (let u = 0; u < width; u++) {
      if (Math.floor(perm[e * width + u] / width) !== old) throw new SymmetryUnsupported(`the MLP permutation of layer ${layer} splits the units of expert ${old}`);
    }
    return old;
  });
}

/** A permutation of heads as one of their features (blocks of head_dim). */
function blockFeatures(perm: readonly number[], hd: number): number[] {
  return perm.flatMap((old) => Array.from({ length: hd }, (_, e) => old * hd + e));
}

function checkResidual(r: Float64Array, layout: TransformerLayout, get: (n: string) => DenseTensor): void {
  const d = layout.hidden;
  if (r.length !== d * d) throw new SymmetryUnsupported(`the residual map has ${r.length} entries, expected ${d} x ${d}`);
  const gains = [layout.finalNorm.gain, ...layout.blocks.flatMap((b) => [b.attnNorm.gain, b.mlpNorm.gain])];
  const unfolded = gains.find((n) => !get(n).data.every((x) => x === 1));
  if (unfolded) throw new SymmetryUnsupported(`\`${unfolded}\` is not all ones: fold the norms first (foldNorms)`);
  if (layout.centered) {
    for (let i = 0; i < d; i++) {
      let row = 0;
      for (let j = 0; j < d; j++) row += r[i * d + j];
      if (Math.abs(row - 1) > 1e-6) throw new SymmetryUnsupported(`the residual map does not fix the all-ones direction (row ${i} sums to ${row}), which LayerNorm's centering needs`);
    }
  }
}

function checkHeadMap(q: Float64Array, hd: number, what: string): void {
  if (q.length !== hd * hd) throw new SymmetryUnsupported(`the ${what} has ${q.length} entries, expected ${hd} x ${hd}`);
  const err = orthogonalityError(q, hd);
  if (err > 1e-6) throw new SymmetryUnsupported(`the ${what} is not orthogonal (|Q^T Q - I| up to ${err})`);
}
