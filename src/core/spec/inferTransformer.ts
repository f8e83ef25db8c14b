/**
 * Inference for transformer blocks with GPT-2, Llama and BERT (Hugging Face) naming.
 *
 * Two kinds of permutation (Git Re-Basin section 3, applied to pre-/post-LN transformers):
 * - `P_residual`: the residual stream, one for the whole model, since every block reads and
 *   adds into the same stream. It acts on the embeddings' width, the input axis of every
 *   projection that reads the stream, the output axis (and bias) of every projection that
 *   writes it, and every LayerNorm/RMSNorm scale and bias on it (their mean/variance are
 *   invariant under a permutation, the elementwise scale follows it).
 * - `P_<block>.mlp`: the MLP hidden units of each block (fc out / proj in; gate and up out /
 *   down in for Llama).
 * Attention heads are not permuted: a head permutation moves blocks of `head_dim` rows of
 * q/k/v together and is not a permutation of whole axes. Llama's rotary q/k head dimensions
 * must not be permuted either, and are not. GPT-2 `Conv1D` weights are stored [in, out].
 */
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import type { AxesTable, TensorShape } from './shapes';

export type TransformerKind = 'gpt2' | 'llama' | 'bert';

export interface TransformerResult {
  readonly family: 'transformer';
  readonly kind: TransformerKind;
  readonly axes: AxesTable;
  readonly notes: string[];
}

const SOURCE = 'inferred spec';
const RESIDUAL = 'P_residual';

/** R: residual stream; M: the block's MLP hidden units; null: not permuted. */
type Role = 'R' | 'M' | null;
interface Rule {
  readonly re: RegExp;
  /** One role per axis; `weight`/`bias` rules are written for their exact rank. */
  readonly roles: readonly Role[] | 'none';
}

const N = String.raw`(\d+)`;

// Each regex matches a name relative to the model prefix; group 1 is the block number when present.
const GPT2_RULES: readonly Rule[] = [
  { re: /^wte\.weight$/, roles: [null, 'R'] },
  { re: /^wpe\.weight$/, roles: [null, 'R'] },
  { re: new RegExp(`^h\\.${N}\\.ln_[12]\\.(weight|bias)$`), roles: ['R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.weight$`), roles: ['R', null] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.bias$`), roles: [null] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_proj\\.weight$`), roles: [null, 'R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_proj\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.(bias|masked_bias)$`), roles: 'none' },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_fc\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_fc\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_proj\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^h\\.${N}\\.mlp\\.c_proj\\.bias$`), roles: ['R'] },
  { re: /^ln_f\.(weight|bias)$/, roles: ['R'] },
];

const LLAMA_RULES: readonly Rule[] = [
  { re: /^embed_tokens\.weight$/, roles: [null, 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.(input|post_attention|pre_feedforward|post_feedforward)_layernorm\\.(weight|bias)$`), roles: ['R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.[qkv]_proj\\.weight$`), roles: [null, 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.[qkv]_proj\\.bias$`), roles: [null] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.[qk]_norm\\.weight$`), roles: [null] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.o_proj\\.weight$`), roles: ['R', null] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.o_proj\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.rotary_emb\\.inv_freq$`), roles: 'none' },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.(gate|up)_proj\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.(gate|up)_proj\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.down_proj\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^layers\\.${N}\\.mlp\\.down_proj\\.bias$`), roles: ['R'] },
  { re: /^norm\.(weight|bias)$/, roles: ['R'] },
  { re: /^rotary_emb\.inv_freq$/, roles: 'none' },
];

const BERT_RULES: readonly Rule[] = [
  { re: /^embeddings\.(word|position|token_type)_embeddings\.weight$/, roles: [null, 'R'] },
  { re: /^embeddings\.LayerNorm\.(weight|bias|gamma|beta)$/, roles: ['R'] },
  { re: /^embeddings\.(position_ids|token_type_ids)$/, roles: 'none' },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.(query|key|value)\\.weight$`), roles: [null, 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.(query|key|value)\\.bias$`), roles: [null] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.output\\.dense\\.weight$`), roles: ['R', null] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.output\\.dense\\.bias$`), roles: ['R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.(attention\\.output|output)\\.LayerNorm\\.(weight|bias|gamma|beta)$`), roles: ['R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.intermediate\\.dense\\.weight$`), roles: ['M', 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.intermediate\\.dense\\.bias$`), roles: ['M'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.output\\.dense\\.weight$`), roles: ['R', 'M'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.output\\.dense\\.bias$`), roles: ['R'] },
  // The pooler reads the first token of the stream; its output is the model's, not permuted.
  { re: /^pooler\.dense\.weight$/, roles: [null, 'R'] },
  { re: /^pooler\.dense\.bias$/, roles: [null] },
];

/** Heads outside the model prefix, matched on the full name. */
const LM_HEAD_RULES: readonly Rule[] = [
  { re: /^(lm_head|score)\.weight$/, roles: [null, 'R'] },
  { re: /^(lm_head|score)\.bias$/, roles: [null] },
];

/**
 * BERT heads. The MLM decoder is usually tied to `word_embeddings` (whose width is the stream),
 * so the MLM transform keeps the stream's order: dense [R, R], its LayerNorm R, decoder [-, R].
 */
function bertHeadRules(hasPooler: boolean): readonly Rule[] {
  return [
    { re: /^cls\.predictions\.transform\.dense\.weight$/, roles: ['R', 'R'] },
    { re: /^cls\.predictions\.transform\.dense\.bias$/, roles: ['R'] },
    { re: /^cls\.predictions\.transform\.LayerNorm\.(weight|bias|gamma|beta)$/, roles: ['R'] },
    { re: /^cls\.predictions\.decoder\.weight$/, roles: [null, 'R'] },
    { re: /^cls\.(predictions|seq_relationship)\./, roles: 'none' },
    // Sequence classifiers read the pooler's output; token classifiers (no pooler) read the stream.
    { re: /^(classifier|qa_outputs)\.weight$/, roles: hasPooler ? 'none' : [null, 'R'] },
    { re: /^(classifier|qa_outputs)\.bias$/, roles: 'none' },
  ];
}

const DETECT: readonly { kind: TransformerKind; re: RegExp }[] = [
  { kind: 'gpt2', re: /^(.*?)h\.\d+\.attn\.c_attn\.weight$/ },
  { kind: 'llama', re: /^(.*?)layers\.\d+\.self_attn\.q_proj\.weight$/ },
  { kind: 'bert', re: /^(.*?)encoder\.layer\.\d+\.attention\.self\.query\.weight$/ },
];

/**
 * Which transformer naming the tensors use (the first of gpt2, llama, bert found; only `only`
 * when given), and the prefix before it (`transformer.`, `model.`, `bert.`).
 */
export function detectTransformer(tensors: readonly TensorShape[], only?: TransformerKind): { kind: TransformerKind; prefix: string } | null {
  for (const d of DETECT) {
    if (only && d.kind !== only) continue;
    for (const t of tensors) {
      const m = d.re.exec(t.name);
      if (m) return { kind: d.kind, prefix: m[1] };
    }
  }
  return null;
}

function findRule(rules: readonly Rule[], name: string): { rule: Rule; m: RegExpExecArray } | null {
  for (const rule of rules) {
    const m = rule.re.exec(name);
    if (m) return { rule, m };
  }
  return null;
}

export function inferTransformer(tensors: readonly TensorShape[], kind: TransformerKind, prefix: string): TransformerResult {
  const body = kind === 'gpt2' ? GPT2_RULES : kind === 'llama' ? LLAMA_RULES : BERT_RULES;
  const hasPooler = tensors.some((t) => t.name === `${prefix}pooler.dense.weight`);
  const outside = kind === 'bert' ? bertHeadRules(hasPooler) : LM_HEAD_RULES;
  const blockPrefix = kind === 'gpt2' ? 'h.' : kind === 'llama' ? 'layers.' : 'encoder.layer.';
  const axes: AxesTable = {};
  const unplaced: TensorShape[] = [];
  for (const t of tensors) {
    const rel = t.name.startsWith(prefix) ? t.name.slice(prefix.length) : null;
    const found = (rel !== null ? findRule(body, rel) : null) ?? findRule(outside, t.name);
    if (!found || (found.rule.roles !== 'none' && found.rule.roles.length !== t.shape.length)) {
      unplaced.push(t);
      continue;
    }
    const { rule, m } = found;
    const block = m[1];
    axes[t.name] =
      rule.roles === 'none'
        ? t.shape.map(() => null)
        : rule.roles.map((r) => (r === 'R' ? RESIDUAL : r === 'M' ? `P_${prefix}${blockPrefix}${block}.mlp` : null));
  }
  if (unplaced.length > 0) {
    const shown = unplaced.slice(0, 6).map((t) => `\`${t.name}\` ${JSON.stringify(t.shape)}`);
    throw new SpecError(
      'Unplaceable',
      `${SOURCE}: cannot place ${shown.join(', ')}${unplaced.length > 6 ? ` and ${unplaced.length - 6} more` : ''} in a ${kind} transformer; ${HAND_WRITTEN_SPEC_HINT}`,
      SOURCE,
      unplaced[0].name,
    );
  }
  const notes = [
    '`P_residual` permutes the residual stream of the whole model: embeddings, every projection reading or writing the stream, every norm on it',
    'the mlp hidden units of each block have their own permutation (`P_<block>.mlp`)',
    'attention heads are not permuted (a head permutation moves head_dim-sized blocks of q/k/v rows together, not whole axes); q/k/v and attention-output inner axes are left as they are',
  ];
  if (kind === 'llama') notes.push('rotary position embeddings: q/k head dimensions are never permuted');
  if (kind !== 'bert' && !tensors.some((t) => /^(lm_head|score)\.weight$/.test(t.name))) {
    notes.push('no `lm_head`: the output projection is taken to be tied to the token embeddings, which carry the stream permutation');
  }
  if (kind === 'bert') notes.push("the encoder's last hidden states come out in the permuted order; the pooler output and the heads do not change");
  if (kind === 'gpt2') notes.push('gpt-2 conv1d weights are stored [in, out]: their first axis reads the stream');
  return { family: 'transformer', kind, axes, notes };
}
