/**
 * Vision Transformers in Hugging Face's `ViTForImageClassification` naming (`vit.embeddings.*`,
 * `vit.encoder.layer.L.attention.attention.query|key|value`, pre-LN blocks, a CLS token read by
 * `classifier`); `ViTModel` files (no `vit.` prefix, an optional pooler) are placed too.
 *
 * Symmetries (Git Re-Basin section 3 on a pre-LN transformer, as inferTransformer does for BERT):
 * - `P_residual`: the residual stream: the patch projection's output channels, the CLS token,
 *   the position embeddings, every LayerNorm, the attention and MLP outputs, the classifier's
 *   (and pooler's) input.
 * - `P_<block>.heads`: the heads of q, k, v and the attention output's input, as units;
 *   `P_<block>.qk`: the dimensions inside each head of q and k jointly (no rotary embeddings
 *   here, q.k is a plain sum over them); `P_<block>.vo`: those of v with the output's input.
 * - `P_<block>.mlp`: the MLP hidden units.
 * Heads come from config.json (`num_attention_heads`) or the model config's `heads`.
 */
import type { AxisEntry, TensorMap } from '../checkpoint';
import { SymmetryUnsupported } from '../symmetry/errors';
import type { BlockLayout, LinearLayer, TransformerLayout } from '../symmetry/transformerLayout';
import { HAND_WRITTEN_SPEC_HINT, SpecError } from '../permspec/errors';
import type { AxesTable, TensorShape } from '../permspec/shapes';
import type { CoreFamily, FamilyInference, HfConfig } from './family';
import type { ModelConfig } from './modelConfig';

const SOURCE = 'inferred spec';
const RESIDUAL = 'P_residual';
const N = String.raw`(\d+)`;

/** R: residual stream; M: MLP units; Q/K/V: heads of a projection's output; O: heads of the output projection's input. */
type Role = 'R' | 'M' | 'Q' | 'K' | 'V' | 'O' | null;

// Names relative to the model prefix (`vit.` or none); group 1 is the block number when present.
const RULES: readonly { re: RegExp; roles: readonly Role[] }[] = [
  { re: /^embeddings\.(cls_token|position_embeddings)$/, roles: [null, null, 'R'] },
  { re: /^embeddings\.patch_embeddings\.projection\.weight$/, roles: ['R', null, null, null] },
  { re: /^embeddings\.patch_embeddings\.projection\.bias$/, roles: ['R'] },
  ...(['query', 'key', 'value'] as const).flatMap((p, i) => {
    const role = (['Q', 'K', 'V'] as const)[i];
    return [
      { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.attention\\.${p}\\.weight$`), roles: [role, 'R'] as Role[] },
      { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.attention\\.${p}\\.bias$`), roles: [role] as Role[] },
    ];
  }),
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.output\\.dense\\.weight$`), roles: ['R', 'O'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.(attention\\.)?output\\.dense\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.intermediate\\.dense\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.intermediate\\.dense\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.output\\.dense\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.layernorm_(before|after)\\.(weight|bias)$`), roles: ['R'] },
  { re: /^layernorm\.(weight|bias)$/, roles: ['R'] },
  { re: /^pooler\.dense\.weight$/, roles: [null, 'R'] },
  { re: /^pooler\.dense\.bias$/, roles: [null] },
];

/** The classifier sits outside the model prefix (`classifier`, not `vit.classifier`). */
const HEAD_RULES: readonly { re: RegExp; roles: readonly Role[] }[] = [
  { re: /^classifier\.weight$/, roles: [null, 'R'] },
  { re: /^classifier\.bias$/, roles: [null] },
];

const PATCH = /^(.*)embeddings\.patch_embeddings\.projection\.weight$/;

/** The model prefix (`vit.`, or `` for a bare ViTModel), or null when the tensors are no ViT. */
export function vitPrefix(tensors: readonly TensorShape[]): string | null {
  for (const t of tensors) {
    const m = PATCH.exec(t.name);
    if (!m || t.shape.length !== 4) continue;
    const query = new RegExp(`^${m[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}encoder\\.layer\\.\\d+\\.attention\\.attention\\.query\\.weight$`);
    if (tensors.some((u) => query.test(u.name))) return m[1];
  }
  return null;
}

/** The attention head count, or a one-line SpecError saying where to give it. */
function headCount(tensors: readonly TensorShape[], prefix: string, hf?: HfConfig): { heads: number; headDim: number } {
  const width = tensors.find((t) => t.name === `${prefix}encoder.layer.0.attention.attention.query.weight`)?.shape[0]
    ?? tensors.find((t) => t.name === `${prefix}embeddings.cls_token`)?.shape[2] ?? 0;
  const fail = (why: string): never => {
    throw new SpecError('Unplaceable', `${SOURCE}: ${why}: add "num_attention_heads" to config.json beside the checkpoint, or "heads" to <checkpoint>.rebasin.json`, SOURCE);
  };
  const heads = hf?.heads ?? fail(`cannot tell the number of attention heads of this vit model (attention width ${width})`);
  if (width % heads !== 0) fail(`${heads} attention heads do not divide the attention width ${width}`);
  return { heads, headDim: width / heads };
}

function inferVit(tensors: readonly TensorShape[], hf?: HfConfig): FamilyInference {
  const prefix = vitPrefix(tensors) ?? '';
  const { heads, headDim } = headCount(tensors, prefix, hf);
  const axes: AxesTable = {};
  const unplaced: TensorShape[] = [];
  for (const t of tensors) {
    const rel = t.name.startsWith(prefix) ? t.name.slice(prefix.length) : null;
    const rule = (rel !== null ? RULES.find((r) => r.re.test(rel)) : undefined) ?? HEAD_RULES.find((r) => r.re.test(t.name));
    if (!rule || rule.roles.length !== t.shape.length) {
      unplaced.push(t);
      continue;
    }
    const block = rel !== null ? rule.re.exec(rel)?.[1] : undefined;
    const base = `P_${prefix}encoder.layer.${block}`;
    const entry = (r: Role): AxisEntry => {
      if (r === null) return null;
      if (r === 'R') return RESIDUAL;
      if (r === 'M') return `${base}.mlp`;
      // q and k share the inner permutation of each head, v and the output projection another.
      return { parts: [{ split: [heads, headDim], perms: [`${base}.heads`, r === 'Q' || r === 'K' ? `${base}.qk` : `${base}.vo`] }] };
    };
    axes[t.name] = rule.roles.map(entry);
  }
  if (unplaced.length > 0) {
    const shown = unplaced.slice(0, 6).map((t) => `\`${t.name}\` ${JSON.stringify(t.shape)}`);
    throw new SpecError(
      'Unplaceable',
      `${SOURCE}: cannot place ${shown.join(', ')}${unplaced.length > 6 ? ` and ${unplaced.length - 6} more` : ''} in a vit model; ${HAND_WRITTEN_SPEC_HINT}`,
      SOURCE,
      unplaced[0].name,
    );
  }
  return {
    axes,
    notes: [
      '`P_residual` permutes the residual stream of the whole model: the patch projection, CLS token, position embeddings, every projection reading or writing the stream, every LayerNorm, the classifier\'s input',
      'the mlp hidden units of each block have their own permutation (`P_<block>.mlp`)',
      `attention: ${heads} heads of ${headDim} dimensions permute as units (\`P_<block>.heads\`); q and k permute the dimensions inside each head jointly (\`P_<block>.qk\`), v with the output projection's input (\`P_<block>.vo\`)`,
    ],
  };
}

const positiveInt = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
/** `image_size` / `patch_size`: one number, or [height, width]. */
const sizePair = (v: unknown): [number, number] | undefined => {
  if (positiveInt(v) !== undefined) return [v as number, v as number];
  return Array.isArray(v) && v.length === 2 && v.every((x) => positiveInt(x) !== undefined) ? [v[0] as number, v[1] as number] : undefined;
};
/** transformers' `hidden_act` names with a forward pass here (exact GELU is `gelu`). */
const ACTIVATIONS: Readonly<Record<string, string>> = { gelu: 'gelu', relu: 'relu', tanh: 'tanh', sigmoid: 'sigmoid' };

/**
 * The model config a ViT `config.json` gives: heads, LayerNorm epsilon (ViTConfig's default
 * 1e-12 when absent, as transformers uses), activation, and the input shape [C, H, W] when
 * `image_size` is given. An activation without a forward pass here travels as `hiddenAct` for
 * the forward pass to name.
 */
function vitModelConfig(raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { family: 'vit' };
  const heads = positiveInt(raw.num_attention_heads);
  if (heads !== undefined) out.heads = heads;
  out.eps = typeof raw.layer_norm_eps === 'number' && raw.layer_norm_eps > 0 ? raw.layer_norm_eps : 1e-12;
  const act = typeof raw.hidden_act === 'string' ? raw.hidden_act : 'gelu';
  if (ACTIVATIONS[act]) out.activation = ACTIVATIONS[act];
  else out.hiddenAct = act;
  const image = sizePair(raw.image_size);
  if (image) out.inputShape = [positiveInt(raw.num_channels) ?? 3, ...image];
  return out;
}

/**
 * Where a ViT's stream, heads and MLP units sit for the orthogonal symmetry
 * (core/symmetry/transformerLayout.ts): pre-LN like GPT-2 (LayerNorm: centered), the patch
 * projection writes the stream from the image, the CLS token and position embeddings are added
 * to it, and `classifier` reads it after the final LayerNorm. No rotary positions, no
 * grouped-query attention.
 */
function vitOrthogonalLayout(tensors: TensorMap, config: ModelConfig, file: string): TransformerLayout {
  const shapes = [...tensors].map(([name, t]) => ({ name, shape: t.shape }));
  const p = vitPrefix(shapes) ?? '';
  const { heads, headDim } = headCount(shapes, p, { heads: typeof config.heads === 'number' ? config.heads : undefined });
  const has = (n: string) => tensors.has(n);
  const opt = (n: string) => (has(n) ? n : undefined);
  const lin = (n: string): LinearLayer => ({ weight: `${n}.weight`, bias: opt(`${n}.bias`), storage: 'outIn' });
  if (!has('classifier.weight')) throw new SymmetryUnsupported(`${file}: a ViT without \`classifier\` has no logits to keep; the orthogonal symmetry needs ViTForImageClassification weights`);
  if (has(`${p}pooler.dense.weight`)) throw new SymmetryUnsupported(`${file}: a ViT pooler (\`${p}pooler.dense\`) is not handled by the orthogonal symmetry`);
  const blocks: BlockLayout[] = [];
  for (let i = 0; has(`${p}encoder.layer.${i}.attention.attention.query.weight`); i++) {
    const l = `${p}encoder.layer.${i}`;
    const [q, k, v] = ['query', 'key', 'value'].map((x) => lin(`${l}.attention.attention.${x}`));
    const fc = lin(`${l}.intermediate.dense`);
    blocks.push({
      attnNorm: { gain: `${l}.layernorm_before.weight`, bias: opt(`${l}.layernorm_before.bias`), readers: [q, k, v] },
      mlpNorm: { gain: `${l}.layernorm_after.weight`, bias: opt(`${l}.layernorm_after.bias`), readers: [fc] },
      q: { layer: q, offset: 0 },
      k: { layer: k, offset: 0 },
      v: { layer: v, offset: 0 },
      o: lin(`${l}.attention.output.dense`),
      mlpIn: [fc],
      mlpOut: lin(`${l}.output.dense`),
      mlpWidth: tensors.get(fc.weight)?.shape[0] ?? 0,
    });
  }
  const hidden = tensors.get(`${p}embeddings.cls_token`)?.shape[2] ?? heads * headDim;
  return {
    arch: 'vit', hidden, heads, kvHeads: heads, headDim, rotary: false, centered: true,
    embeddings: [`${p}embeddings.cls_token`, `${p}embeddings.position_embeddings`],
    inputWriters: [lin(`${p}embeddings.patch_embeddings.projection`)],
    blocks,
    finalNorm: { gain: `${p}layernorm.weight`, bias: opt(`${p}layernorm.bias`) },
    head: lin('classifier'), tied: false,
  };
}

export const vit: CoreFamily = {
  id: 'vit',
  reportedAs: 'vit',
  label: 'Vision Transformer (ViT, Hugging Face naming)',
  hfModelTypes: ['vit'],
  detect: (tensors) => vitPrefix(tensors) !== null,
  infer: inferVit,
  mismatchHint: 'the residual stream (CLS token, position embeddings, a LayerNorm), attention heads or their q/k or v/o dimensions the spec misses',
  configKeys: ['heads', 'eps', 'activation', 'inputShape'],
  modelConfigFromHf: vitModelConfig,
  orthogonalLayout: vitOrthogonalLayout,
};
