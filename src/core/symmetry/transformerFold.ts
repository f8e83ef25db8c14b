/**
 * Folding a transformer's norm gains (and LayerNorm biases) into the layers that read them: the
 * reparameterised A' computes A's function exactly (in real arithmetic) with every norm at unit
 * gain, which is what lets an orthogonal map of the residual stream commute with the norms
 * (transformerGroup.ts).
 *
 * What changes:
 * - each block's two norms: gain -> 1 (GPT-2's LayerNorm bias -> 0); their readers (GPT-2
 *   `c_attn`, `c_fc`; Llama `q/k/v_proj`, `gate_proj`, `up_proj`) have their input features scaled
 *   by the gain, and (LayerNorm) their bias gains bias_norm . W;
 * - the final norm: gain -> 1; the output head's input features are scaled by the gain. The head
 *   has no bias in GPT2LMHeadModel or LlamaForCausalLM, so a LayerNorm bias b cannot become a
 *   logit bias: it stays in the norm as b / gain (exact: (n + b/g) diag(g) H^T = (g n + b) H^T),
 *   and the group action rotates it with the stream. A zero gain with a non-zero bias has no such
 *   form and is refused.
 * - the tied-embedding trap: with a tied head and a final gain that is not all ones, the head
 *   (embedding x gain) differs from the input embedding, so A' is untied: `lm_head.weight` is
 *   added and config.json must say `"tie_word_embeddings": false` (`foldedConfigJson`).
 * Embeddings (ViT's patch projection, CLS token, position embeddings), attention outputs and
 * MLP outputs are unchanged. A Mixtral router reads the MLP norm: its input features take the
 * gain like the experts'.
 */
import type { DenseTensor, TensorMap } from '../checkpoint';
import { scaleAxis } from './orthogonal';
import { featureAxis, SymmetryUnsupported, type LinearLayer, type NormSite, type TransformerLayout } from './transformerLayout';

export interface FoldedTransformer {
  readonly tensors: Map<string, DenseTensor>;
  /** The layout of the folded weights (`tied` false once the head had to be untied). */
  readonly layout: TransformerLayout;
  /** True when a tied head became `lm_head.weight`. */
  readonly untied: boolean;
  /** Names of the tensors whose values changed, in checkpoint order. */
  readonly changed: readonly string[];
  /** Names of tensors added (`lm_head.weight` when untied). */
  readonly added: readonly string[];
}

/** A' = A with unit-gain norms (see the module comment for what changes). */
export function foldNorms(tensors: TensorMap, layout: TransformerLayout): FoldedTransformer {
  const out = new Map(tensors);
  const get = (name: string): DenseTensor => {
    const t = out.get(name);
    if (!t) throw new SymmetryUnsupported(`tensor \`${name}\` is missing`);
    return t;
  };
  for (const block of layout.blocks) for (const site of [block.attnNorm, block.mlpNorm]) foldSite(site, get, out);
  const gain = get(layout.finalNorm.gain).data;
  const unitGain = gain.every((g) => g === 1);
  const untied = layout.tied && !unitGain;
  if (!unitGain) {
    const headName = layout.tied ? tiedEmbedding(layout) : layout.head.weight;
    out.set(layout.head.weight, scaleAxis(get(headName), 1, gain));
    if (layout.finalNorm.bias) {
      const bias = get(layout.finalNorm.bias).data;
      const carried = new Float32Array(bias.length);
      for (let i = 0; i < bias.length; i++) {
        if (gain[i] === 0 && bias[i] !== 0) {
          throw new SymmetryUnsupported(`\`${layout.finalNorm.gain}\` is 0 at feature ${i} where \`${layout.finalNorm.bias}\` is not: no unit-gain form without a logit bias`);
        }
        carried[i] = gain[i] === 0 ? 0 : bias[i] / gain[i];
      }
      out.set(layout.finalNorm.bias, { shape: [bias.length], data: carried });
    }
    out.set(layout.finalNorm.gain, ones(gain.length));
  }
  const changed = [...tensors.keys()].filter((n) => out.get(n) !== tensors.get(n) && !sameValues(out.get(n)!, tensors.get(n)!));
  const added = [...out.keys()].filter((n) => !tensors.has(n));
  return { tensors: out, layout: { ...layout, tied: layout.tied && !untied }, untied, changed, added };
}

/** config.json of the folded checkpoint: `tie_word_embeddings` false once the head was untied. */
export function foldedConfigJson(raw: Readonly<Record<string, unknown>>, folded: FoldedTransformer): Record<string, unknown> {
  return folded.untied ? { ...raw, tie_word_embeddings: false } : { ...raw };
}

function tiedEmbedding(layout: TransformerLayout): string {
  if (!layout.tokenEmbedding) throw new SymmetryUnsupported('a tied head without a token embedding');
  return layout.tokenEmbedding;
}

function foldSite(site: NormSite, get: (n: string) => DenseTensor, out: Map<string, DenseTensor>): void {
  const gain = get(site.gain).data;
  const bias = site.bias ? get(site.bias).data : undefined;
  const hasBias = bias?.some((b) => b !== 0) ?? false;
  if (gain.every((g) => g === 1) && !hasBias) return;
  for (const reader of site.readers) {
    const w = get(reader.weight);
    if (hasBias) out.set(biasName(reader, site), addBias(reader.bias ? get(reader.bias) : undefined, projectBias(bias!, w, reader)));
    out.set(reader.weight, scaleAxis(w, featureAxis(reader, 'in'), gain));
  }
  out.set(site.gain, ones(gain.length));
  if (site.bias) out.set(site.bias, { shape: [gain.length], data: new Float32Array(gain.length) });
}

function biasName(reader: LinearLayer, site: NormSite): string {
  if (!reader.bias) throw new SymmetryUnsupported(`\`${site.bias}\` cannot be folded: \`${reader.weight}\` has no bias`);
  return reader.bias;
}

/** b . W for a norm bias b and a reader W: the reader's output for input b. */
function projectBias(b: Float32Array, w: DenseTensor, reader: LinearLayer): Float64Array {
  const [rows, cols] = w.shape;
  const inOut = reader.storage === 'inOut';
  const y = new Float64Array(inOut ? cols : rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (inOut) y[c] += b[r] * w.data[r * cols + c];
      else y[r] += b[c] * w.data[r * cols + c];
    }
  }
  return y;
}

function addBias(bias: DenseTensor | undefined, add: Float64Array): DenseTensor {
  const data = new Float32Array(add.length);
  for (let i = 0; i < add.length; i++) data[i] = (bias?.data[i] ?? 0) + add[i];
  return { shape: [add.length], data };
}

function ones(n: number): DenseTensor {
  return { shape: [n], data: new Float32Array(n).fill(1) };
}

function sameValues(a: DenseTensor, b: DenseTensor): boolean {
  return a.data.length === b.data.length && a.data.every((x, i) => x === b.data[i]);
}
