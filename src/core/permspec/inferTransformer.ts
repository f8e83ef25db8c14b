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
import type { FamilyId } from '../families/familyId';
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import type { AxesTable, TensorShape } from './shapes';

/**
 * One transformer naming's spec rules, declared by its family's core module (src/core/families/):
 * how its blocks are named, each tensor's roles, where its attention widths are read, and what
 * its attention allows (rotary q/k dimensions never move; grouped-query KV groups).
 */
export interface TransformerNaming {
  readonly id: FamilyId;
  /** A name every model of the naming has in each block; group 1 is the prefix before it. */
  readonly detect: RegExp;
  /** Blocks are `<prefix><blockPrefix>N.` (`h.`, `layers.`, `encoder.layer.`). */
  readonly blockPrefix: string;
  /** Roles of the tensors under the prefix, matched on the name relative to it. */
  readonly rules: readonly Rule[];
  /** Roles of the heads outside the prefix, matched on the full name (`hasPooler`: the model has a pooler). */
  outsideRules(hasPooler: boolean): readonly Rule[];
  /** The first block's q and k projections (relative names): their widths; `packed`: q|k|v in one [in, 3 x out] Conv1D. */
  readonly attention: { readonly q: RegExp; readonly k?: RegExp; readonly packed?: boolean };
  /** config.json's head-count key, for messages. */
  readonly headsKey: string;
  /** Rotary q/k: no inner permutation of q/k dimensions; KV groups; head_dim shown by `q_norm` / `inv_freq`. */
  readonly rotary: boolean;
  /** Causal LM: an absent `lm_head` is taken as tied to the token embeddings (a note says so). */
  readonly lmHead: boolean;
  /** The naming's own notes. */
  readonly notes: readonly string[];
  /**
   * Axes of tensors the naming places itself before its rules (Mixtral's router and stacked
   * experts, spec/inferExperts.ts); undefined for the tensors the rules place. `residual` is the
   * stream's permutation.
   */
  ownAxes?(t: TensorShape, tensors: readonly TensorShape[], residual: string): AxisEntry[] | undefined;
  /** The note on each block's MLP when the naming has its own (Mixtral: experts in its place). */
  mlpNote?(tensors: readonly TensorShape[]): string | undefined;
}

export interface TransformerResult {
  readonly family: 'transformer';
  readonly kind: FamilyId;
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
export type Role = 'R' | 'M' | 'Q' | 'K' | 'V' | 'O' | 'QKV' | 'QN' | 'KN' | null;
export interface Rule {
  readonly re: RegExp;
  /** One role per axis; `weight`/`bias` rules are written for their exact rank. */
  readonly roles: readonly Role[] | 'none';
}

/** A block number in a rule's regex (group 1). */
export const N = String.raw`(\d+)`;

// Each regex matches a name relative to the model prefix; group 1 is the block number when present.
/** A causal LM's heads outside the model prefix, matched on the full name. */
export const LM_HEAD_RULES: readonly Rule[] = [
  { re: /^(lm_head|score)\.weight$/, roles: [null, 'R'] },
  { re: /^(lm_head|score)\.bias$/, roles: [null] },
];

/** The prefix before `naming`'s blocks (`transformer.`, `model.`, `bert.`, or empty); null when the tensors are not so named. */
export function namingPrefix(tensors: readonly TensorShape[], naming: TransformerNaming): string | null {
  for (const t of tensors) {
    const m = naming.detect.exec(t.name);
    if (m) return m[1];
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
function attentionWidths(tensors: readonly TensorShape[], naming: TransformerNaming, prefix: string): { q: number; k: number } | null {
  const find = (re: RegExp): TensorShape | undefined => tensors.find((t) => t.name.startsWith(prefix) && re.test(t.name.slice(prefix.length)));
  const q = find(naming.attention.q);
  if (naming.attention.packed) return q && q.shape.length === 2 ? { q: q.shape[1] / 3, k: q.shape[1] / 3 } : null;
  const k = naming.attention.k ? find(naming.attention.k) : undefined;
  return q && k && q.shape.length === 2 && k.shape.length === 2 ? { q: q.shape[0], k: k.shape[0] } : null;
}

/**
 * The head counts: config.json / model config first, else head_dim shown by a tensor (Llama's
 * `q_norm` [head_dim] or rotary `inv_freq` [head_dim / 2]); throws a one-line SpecError saying
 * what to add when nothing tells.
 */
export function headInfoOf(tensors: readonly TensorShape[], naming: TransformerNaming, prefix: string, hf?: HfConfig): HeadInfo | null {
  const widths = attentionWidths(tensors, naming, prefix);
  if (!widths) return null;
  const key = naming.headsKey;
  const fail = (why: string): never => {
    throw new SpecError(
      'Unplaceable',
      `${SOURCE}: ${why}: add ${key} (and "num_key_value_heads" for grouped-query attention) to config.json beside the checkpoint, or "heads" (and "kvHeads") to <checkpoint>.rebasin.json`,
      SOURCE,
    );
  };
  let heads = hf?.heads;
  let headDim = hf?.headDim;
  if (heads === undefined && naming.rotary) {
    const norm = tensors.find((t) => /self_attn\.q_norm\.weight$/.test(t.name) && t.shape.length === 1 && t.shape[0] < widths.q);
    const rotary = tensors.find((t) => /rotary_emb\.inv_freq$/.test(t.name) && t.shape.length === 1);
    headDim ??= norm ? norm.shape[0] : rotary ? 2 * rotary.shape[0] : undefined;
    if (headDim !== undefined && widths.q % headDim === 0) heads = widths.q / headDim;
  }
  if (heads === undefined) return fail(`cannot tell the number of attention heads of this ${naming.id} model (attention width ${widths.q})`);
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
function headEntry(role: 'Q' | 'K' | 'V' | 'O', rotary: boolean, h: HeadInfo, base: string): AxisEntry {
  const heads = `${base}.heads`;
  if (!rotary) {
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

export function inferTransformer(tensors: readonly TensorShape[], naming: TransformerNaming, prefix: string, hf?: HfConfig): TransformerResult {
  const kind = naming.id;
  const body = naming.rules;
  const hasPooler = tensors.some((t) => t.name === `${prefix}pooler.dense.weight`);
  const outside = naming.outsideRules(hasPooler);
  const blockPrefix = naming.blockPrefix;
  const axes: AxesTable = {};
  const unplaced: TensorShape[] = [];
  const heads = headInfoOf(tensors, naming, prefix, hf);
  for (const t of tensors) {
    const own = naming.ownAxes?.(t, tensors, RESIDUAL);
    if (own) {
      axes[t.name] = own;
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
        const parts = (['Q', 'K', 'V'] as const).flatMap((x) => (headEntry(x, naming.rotary, heads, base) as { parts: BlockPart[] }).parts);
        return { parts };
      }
      // A q/k norm over one head's dimensions is shared by all heads: q/k dimensions never move, so it stays.
      if (r === 'QN' || r === 'KN') return t.shape[axis] === heads.headDim ? null : headEntry(r === 'QN' ? 'Q' : 'K', naming.rotary, heads, base);
      return headEntry(r, naming.rotary, heads, base);
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
  const mlpNote = naming.mlpNote?.(tensors);
  const notes = [
    '`P_residual` permutes the residual stream of the whole model: embeddings, every projection reading or writing the stream, every norm on it',
    mlpNote ?? 'the mlp hidden units of each block have their own permutation (`P_<block>.mlp`)',
  ];
  if (!heads) notes.push('no attention projections found: no heads to permute');
  else if (!naming.rotary) {
    notes.push(`attention: ${heads.heads} heads of ${heads.headDim} dimensions permute as units (\`P_<block>.heads\`); q and k permute the dimensions inside each head jointly (\`P_<block>.qk\`), v with the output projection's input (\`P_<block>.vo\`)`);
  } else {
    notes.push(
      heads.kvHeads < heads.heads
        ? `grouped-query attention: ${heads.kvHeads} key/value groups permute (\`P_<block>.kv_heads\`), the ${heads.heads / heads.kvHeads} query heads of each group permute inside it (\`P_<block>.heads\`), v's ${heads.headDim} dimensions with o_proj's columns per group (\`P_<block>.vo\`)`
        : `attention: ${heads.heads} heads of ${heads.headDim} dimensions permute as units (\`P_<block>.heads\`), v's dimensions with o_proj's columns (\`P_<block>.vo\`)`,
    );
    notes.push('rotary position embeddings: q/k dimensions inside a head are never permuted (rotary pairs)');
  }
  if (naming.lmHead && !tensors.some((t) => /^(lm_head|score)\.weight$/.test(t.name))) {
    notes.push('no `lm_head`: the output projection is taken to be tied to the token embeddings, which carry the stream permutation');
  }
  notes.push(...naming.notes);
  return { family: 'transformer', kind, axes, notes };
}
