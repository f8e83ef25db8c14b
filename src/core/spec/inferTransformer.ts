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
 * - Attention heads (block axes, src/core/blockAxis.ts), per block:
 *   - GPT-2 / BERT: `P_<block>.heads` permutes the heads of q, k, v and the attention output's
 *     input together; `P_<block>.qk` permutes the dimensions inside each head of q and k jointly
 *     (q.k is a sum over them); `P_<block>.vo` those of v with the output projection's input.
 *   - Llama naming (also Mistral, Qwen2/3, Gemma) with rotary embeddings: heads permute as units,
 *     the q/k dimensions inside a head never do (rotary pairs: dimension i turns with i + d/2 at
 *     its own frequency), v's dimensions permute with o_proj's columns (`P_<block>.vo`).
 *   - Grouped-query attention (fewer KV heads than query heads): `P_<block>.kv_heads` permutes the
 *     KV groups (k, v, and their query heads with them), `P_<block>.heads` the query heads inside
 *     each group, and `P_<block>.vo` belongs to the KV group (shared by its query heads).
 *   - `q_norm` / `k_norm` follow q / k: a per-head-dim norm ([head_dim]) is shared by every head
 *     and left alone (q/k dimensions do not move), a whole-width one follows the heads.
 *   Head counts come from `config.json` (`n_head` / `num_attention_heads`, `num_key_value_heads`,
 *   `head_dim`) or the model config's `heads` / `kvHeads`, else from a tensor that shows head_dim
 *   (`q_norm`, rotary `inv_freq`); with none of these inference stops with one line saying what to add.
 * GPT-2 `Conv1D` weights are stored [in, out].
 */
import type { AxisEntry, BlockPart } from '../checkpoint';
import type { HfConfig } from '../families/family';
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import { expertAxes, expertNote } from './inferExperts';
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

/**
 * R: residual stream; M: the block's MLP hidden units; Q/K/V: the heads of a q/k/v projection's
 * output; O: the heads of the attention output projection's input; QKV: GPT-2's packed q|k|v;
 * QN/KN: a q/k norm (follows q/k when whole-width, left alone when [head_dim]); null: not permuted.
 */
type Role = 'R' | 'M' | 'Q' | 'K' | 'V' | 'O' | 'QKV' | 'QN' | 'KN' | null;
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
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.weight$`), roles: ['R', 'QKV'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_attn\\.bias$`), roles: ['QKV'] },
  { re: new RegExp(`^h\\.${N}\\.attn\\.c_proj\\.weight$`), roles: ['O', 'R'] },
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
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_proj\\.weight$`), roles: ['Q', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_proj\\.weight$`), roles: ['K', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.v_proj\\.weight$`), roles: ['V', 'R'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_proj\\.bias$`), roles: ['Q'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_proj\\.bias$`), roles: ['K'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.v_proj\\.bias$`), roles: ['V'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.q_norm\\.weight$`), roles: ['QN'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.k_norm\\.weight$`), roles: ['KN'] },
  { re: new RegExp(`^layers\\.${N}\\.self_attn\\.o_proj\\.weight$`), roles: ['R', 'O'] },
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
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.query\\.weight$`), roles: ['Q', 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.key\\.weight$`), roles: ['K', 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.value\\.weight$`), roles: ['V', 'R'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.query\\.bias$`), roles: ['Q'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.key\\.bias$`), roles: ['K'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.self\\.value\\.bias$`), roles: ['V'] },
  { re: new RegExp(`^encoder\\.layer\\.${N}\\.attention\\.output\\.dense\\.weight$`), roles: ['R', 'O'] },
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

/** Attention shape of the model: query heads, KV heads (= heads without GQA), dimensions per head. */
export interface HeadInfo {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** Widths (rows) of the first block's query and key projections; null without attention tensors. */
function attentionWidths(tensors: readonly TensorShape[], kind: TransformerKind, prefix: string): { q: number; k: number } | null {
  const find = (re: RegExp): TensorShape | undefined => tensors.find((t) => t.name.startsWith(prefix) && re.test(t.name.slice(prefix.length)));
  if (kind === 'gpt2') {
    const t = find(/^h\.\d+\.attn\.c_attn\.weight$/);
    return t && t.shape.length === 2 ? { q: t.shape[1] / 3, k: t.shape[1] / 3 } : null;
  }
  const q = find(kind === 'llama' ? /^layers\.\d+\.self_attn\.q_proj\.weight$/ : /^encoder\.layer\.\d+\.attention\.self\.query\.weight$/);
  const k = find(kind === 'llama' ? /^layers\.\d+\.self_attn\.k_proj\.weight$/ : /^encoder\.layer\.\d+\.attention\.self\.key\.weight$/);
  return q && k && q.shape.length === 2 && k.shape.length === 2 ? { q: q.shape[0], k: k.shape[0] } : null;
}

/**
 * The head counts: config.json / model config first, else head_dim shown by a tensor (Llama's
 * `q_norm` [head_dim] or rotary `inv_freq` [head_dim / 2]); throws a one-line SpecError saying
 * what to add when nothing tells.
 */
export function headInfoOf(tensors: readonly TensorShape[], kind: TransformerKind, prefix: string, hf?: HfConfig): HeadInfo | null {
  const widths = attentionWidths(tensors, kind, prefix);
  if (!widths) return null;
  const key = kind === 'gpt2' ? '"n_head"' : '"num_attention_heads"';
  const fail = (why: string): never => {
    throw new SpecError(
      'Unplaceable',
      `${SOURCE}: ${why}: add ${key} (and "num_key_value_heads" for grouped-query attention) to config.json beside the checkpoint, or "heads" (and "kvHeads") to <checkpoint>.rebasin.json`,
      SOURCE,
    );
  };
  let heads = hf?.heads;
  let headDim = hf?.headDim;
  if (heads === undefined && kind === 'llama') {
    const norm = tensors.find((t) => /self_attn\.q_norm\.weight$/.test(t.name) && t.shape.length === 1 && t.shape[0] < widths.q);
    const rotary = tensors.find((t) => /rotary_emb\.inv_freq$/.test(t.name) && t.shape.length === 1);
    headDim ??= norm ? norm.shape[0] : rotary ? 2 * rotary.shape[0] : undefined;
    if (headDim !== undefined && widths.q % headDim === 0) heads = widths.q / headDim;
  }
  if (heads === undefined) return fail(`cannot tell the number of attention heads of this ${kind} model (attention width ${widths.q})`);
  headDim ??= widths.q / heads;
  if (!Number.isInteger(headDim) || heads * headDim !== widths.q) {
    return fail(`${heads} attention heads${hf?.headDim ? ` of ${hf.headDim} dimensions` : ''} do not fit the attention width ${widths.q}`);
  }
  const kvHeads = hf?.kvHeads ?? widths.k / headDim;
  if (!Number.isInteger(kvHeads) || kvHeads * headDim !== widths.k || heads % kvHeads !== 0) {
    return fail(`${kvHeads} key/value heads of ${headDim} dimensions do not fit the key width ${widths.k} and ${heads} query heads`);
  }
  return { heads, kvHeads, headDim };
}

/** The block-axis entry of an attention role in block `base` (`P_<prefix><block>`). */
function headEntry(role: 'Q' | 'K' | 'V' | 'O', kind: TransformerKind, h: HeadInfo, base: string): AxisEntry {
  const heads = `${base}.heads`;
  if (kind !== 'llama') {
    // GPT-2 / BERT: q and k share the inner permutation, v and the output projection another.
    return { parts: [{ split: [h.heads, h.headDim], perms: [heads, role === 'Q' || role === 'K' ? `${base}.qk` : `${base}.vo`] }] };
  }
  // Rotary q/k: no inner permutation. GQA: groups outside, query heads inside each group.
  const grouped = h.kvHeads < h.heads;
  const outer = grouped ? `${base}.kv_heads` : heads;
  const vo = `${base}.vo`;
  const perGroup = h.heads / h.kvHeads;
  const part = (p: BlockPart): AxisEntry => ({ parts: [p] });
  switch (role) {
    case 'K':
      return part({ split: [h.kvHeads, h.headDim], perms: [outer, null] });
    case 'V':
      return part({ split: [h.kvHeads, h.headDim], perms: [outer, vo] });
    case 'Q':
      return part(grouped ? { split: [h.kvHeads, perGroup, h.headDim], perms: [outer, heads, null] } : { split: [h.heads, h.headDim], perms: [heads, null] });
    case 'O':
      return part(grouped ? { split: [h.kvHeads, perGroup, h.headDim], perms: [outer, heads, vo] } : { split: [h.heads, h.headDim], perms: [heads, vo] });
  }
}

export function inferTransformer(tensors: readonly TensorShape[], kind: TransformerKind, prefix: string, hf?: HfConfig): TransformerResult {
  const body = kind === 'gpt2' ? GPT2_RULES : kind === 'llama' ? LLAMA_RULES : BERT_RULES;
  const hasPooler = tensors.some((t) => t.name === `${prefix}pooler.dense.weight`);
  const outside = kind === 'bert' ? bertHeadRules(hasPooler) : LM_HEAD_RULES;
  const blockPrefix = kind === 'gpt2' ? 'h.' : kind === 'llama' ? 'layers.' : 'encoder.layer.';
  const axes: AxesTable = {};
  const unplaced: TensorShape[] = [];
  const heads = headInfoOf(tensors, kind, prefix, hf);
  for (const t of tensors) {
    // Mixtral's router and stacked experts (spec/inferExperts.ts).
    const moe = kind === 'llama' ? expertAxes(t, tensors, RESIDUAL) : undefined;
    if (moe) {
      axes[t.name] = moe;
      continue;
    }
    const rel = t.name.startsWith(prefix) ? t.name.slice(prefix.length) : null;
    const found = (rel !== null ? findRule(body, rel) : null) ?? findRule(outside, t.name);
    if (!found || (found.rule.roles !== 'none' && found.rule.roles.length !== t.shape.length)) {
      unplaced.push(t);
      continue;
    }
    const { rule, m } = found;
    const block = m[1];
    const base = `P_${prefix}${blockPrefix}${block}`;
    const entry = (r: Role, axis: number): AxisEntry => {
      if (r === 'R') return RESIDUAL;
      if (r === 'M') return `${base}.mlp`;
      if (r === null || !heads) return null;
      if (r === 'QKV') {
        const parts = (['Q', 'K', 'V'] as const).flatMap((x) => (headEntry(x, kind, heads, base) as { parts: BlockPart[] }).parts);
        return { parts };
      }
      // A q/k norm over one head's dimensions is shared by all heads: q/k dimensions never move, so it stays.
      if (r === 'QN' || r === 'KN') return t.shape[axis] === heads.headDim ? null : headEntry(r === 'QN' ? 'Q' : 'K', kind, heads, base);
      return headEntry(r, kind, heads, base);
    };
    axes[t.name] = rule.roles === 'none' ? t.shape.map(() => null) : rule.roles.map((r, axis) => entry(r, axis));
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
  // Mixtral: experts in place of each block's MLP.
  const moeNote = kind === 'llama' ? expertNote(tensors) : undefined;
  const notes = [
    '`P_residual` permutes the residual stream of the whole model: embeddings, every projection reading or writing the stream, every norm on it',
    moeNote ?? 'the mlp hidden units of each block have their own permutation (`P_<block>.mlp`)',
  ];
  if (!heads) notes.push('no attention projections found: no heads to permute');
  else if (kind !== 'llama') {
    notes.push(`attention: ${heads.heads} heads of ${heads.headDim} dimensions permute as units (\`P_<block>.heads\`); q and k permute the dimensions inside each head jointly (\`P_<block>.qk\`), v with the output projection's input (\`P_<block>.vo\`)`);
  } else {
    notes.push(
      heads.kvHeads < heads.heads
        ? `grouped-query attention: ${heads.kvHeads} key/value groups permute (\`P_<block>.kv_heads\`), the ${heads.heads / heads.kvHeads} query heads of each group permute inside it (\`P_<block>.heads\`), v's ${heads.headDim} dimensions with o_proj's columns per group (\`P_<block>.vo\`)`
        : `attention: ${heads.heads} heads of ${heads.headDim} dimensions permute as units (\`P_<block>.heads\`), v's dimensions with o_proj's columns (\`P_<block>.vo\`)`,
    );
    notes.push('rotary position embeddings: q/k dimensions inside a head are never permuted (rotary pairs)');
  }
  if (kind !== 'bert' && !tensors.some((t) => /^(lm_head|score)\.weight$/.test(t.name))) {
    notes.push('no `lm_head`: the output projection is taken to be tied to the token embeddings, which carry the stream permutation');
  }
  if (kind === 'bert') notes.push("the encoder's last hidden states come out in the permuted order; the pooler output and the heads do not change");
  if (kind === 'gpt2') notes.push('gpt-2 conv1d weights are stored [in, out]: their first axis reads the stream');
  return { family: 'transformer', kind, axes, notes };
}
