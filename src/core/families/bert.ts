/** BERT (`encoder.layer.N.attention.self.query`, post-LN, optional pooler and masked-LM head). */
import type { TensorMap } from '../checkpoint';
import { N, type Rule, type TransformerNaming } from '../permspec/inferTransformer';
import { HF_SIZE_KEYS, type CoreLm, type LmConfig } from './lm';
import { ModelError } from './modelErrors';
import { countBlocks, FROM_SHAPES, resolveHeads, shapeOf, type TransformerOptions } from './lmShapes';
import { namingPrefixOf, transformerFamily } from './transformer';

// Each regex matches a name relative to the model prefix; group 1 is the block number when present.
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

/** BERT's spec rules: post-LN encoder, heads with inner q/k and v/o permutations, pooler and task heads. */
const naming: TransformerNaming = {
  id: 'bert',
  detect: /^(.*?)encoder\.layer\.\d+\.attention\.self\.query\.weight$/,
  blockPrefix: 'encoder.layer.',
  rules: BERT_RULES,
  outsideRules: bertHeadRules,
  attention: { q: /^encoder\.layer\.\d+\.attention\.self\.query\.weight$/, k: /^encoder\.layer\.\d+\.attention\.self\.key\.weight$/ },
  headsKey: '"num_attention_heads"',
  rotary: false,
  lmHead: false,
  notes: ["the encoder's last hidden states come out in the permuted order; the pooler output and the heads do not change"],
};

/** Sizes from the shapes; exact GELU and eps 1e-12 unless the model config says otherwise; head_dim 64 by convention. */
function bertFromShapes(tensors: TensorMap, opts: TransformerOptions): LmConfig {
  const p = namingPrefixOf(tensors, naming);
  const [vocab, hidden] = shapeOf(tensors, `${p}embeddings.word_embeddings.weight`, 2);
  const layers = countBlocks(tensors, `${p}encoder.layer.`);
  const hc = resolveHeads('bert', [64], shapeOf(tensors, `${p}encoder.layer.0.attention.self.query.weight`, 2)[0], opts);
  return {
    ...FROM_SHAPES, modelType: 'bert', family: 'bert', objective: 'masked', layers, hidden, heads: hc.heads, kvHeads: hc.heads, headDim: hc.headDim,
    intermediate: shapeOf(tensors, `${p}encoder.layer.0.intermediate.dense.weight`, 2)[0], vocab,
    maxPositions: shapeOf(tensors, `${p}embeddings.position_embeddings.weight`, 2)[0],
    eps: opts.eps ?? 1e-12, act: opts.gelu === 'tanh' ? 'gelu_tanh' : 'gelu', tied: !tensors.has('cls.predictions.decoder.weight'),
    scaleAttnWeights: true, scaleAttnByLayer: false, fromShapes: { headsSource: hc.source },
  };
}

/** BertConfig's keys and defaults; only absolute position embeddings run here. */
const lm: Omit<CoreLm, 'prefix'> = {
  modelTypes: { bert: { className: 'BertConfig', defaults: { num_hidden_layers: 12, hidden_size: 768, num_attention_heads: 12, vocab_size: 30522, max_position_embeddings: 512, intermediate_size: 3072 } } },
  objective: 'masked',
  keys: { ...HF_SIZE_KEYS, eps: 'layer_norm_eps' },
  defaults: { eps: 1e-12, act: 'gelu', tied: true },
  groupedQuery: false,
  extra: (r) => {
    const pet = r.raw.position_embedding_type;
    if (pet !== undefined && pet !== 'absolute') throw new ModelError('Unsupported', `${r.file}: BERT "position_embedding_type" ${JSON.stringify(pet)} is not supported (only "absolute")`, r.file);
    return {};
  },
  fromShapes: bertFromShapes,
  // Post-LN: each LayerNorm's output is the stream itself, so its gain cannot be folded into a reader
  // (the skip path has none), and an orthogonal map commutes with a per-feature gain only when the gain is constant.
  orthogonalUnsupported: 'BERT (post-LN) has no orthogonal symmetry: its LayerNorm gains scale the residual stream itself, where no layer can absorb them, so only permutations keep its function (use --symmetry permutation)',
};

export const bert = transformerFamily(naming, 'Transformer (BERT naming)', lm, ['roberta']);
