/**
 * A transformer's LmConfig when no config.json sits beside the weights (the equivalence check of
 * a bare `.safetensors`): sizes from the tensor shapes, and what the weights cannot say from the
 * model config (`<checkpoint>.rebasin.json` or `--model`), e.g. `{ "family": "transformer", "heads": 12 }`:
 *
 * - `heads`: attention heads (query heads for grouped-query attention).
 * - `kvHeads`: key/value heads; else k_proj's width / head_dim.
 * - `eps`: norm epsilon; else the family's (1e-5 GPT-2 and Llama, 1e-12 BERT).
 * - `gelu`: "exact" or "tanh"; else the family's (tanh GPT-2, exact BERT).
 * - `ropeTheta`: rotary base; else the checkpoint's `rotary_emb.inv_freq`, else 10000.
 *
 * Without `heads`, the head count comes from a tensor that shows head_dim (rotary `inv_freq` has
 * head_dim / 2 entries; Qwen3's `q_norm` has head_dim), else from the family's head_dim
 * conventions when they give one answer. Each family builds its config (`lmConfigFromShapes`
 * of its core module) with these helpers; the forward pass is then the same as with config.json.
 */
import type { TensorMap } from '../checkpoint';
import { ModelError } from './modelErrors';

export type GeluKind = 'exact' | 'tanh';

export interface TransformerOptions {
  readonly heads?: number;
  readonly kvHeads?: number;
  readonly eps?: number;
  readonly gelu?: GeluKind;
  readonly ropeTheta?: number;
}

const HINT = 'give "heads" in <checkpoint>.rebasin.json or the --model file';

/** The transformer keys of a model config (a ModelConfig, validated; unknown to the other families, so read here). */
export function transformerOptions(config: object): TransformerOptions {
  const raw = config as Readonly<Record<string, unknown>>;
  const bad = (rule: string): never => {
    throw new ModelError('ConfigInvalid', `model config: ${rule}`);
  };
  const posInt = (k: string): number | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : bad(`${k} must be a positive integer`);
  };
  const posNum = (k: string): number | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    return typeof v === 'number' && v > 0 ? v : bad(`${k} must be a positive number`);
  };
  const g = raw.gelu;
  if (g !== undefined && g !== 'exact' && g !== 'tanh') bad('gelu must be "exact" or "tanh"');
  return { heads: posInt('heads'), kvHeads: posInt('kvHeads'), eps: posNum('eps'), gelu: g as GeluKind | undefined, ropeTheta: posNum('ropeTheta') };
}

export interface HeadCount {
  readonly heads: number;
  readonly headDim: number;
  /** Where the count came from, for the log. */
  readonly source: string;
}

/**
 * Attention heads of a projection `width` wide (heads x head_dim), for family `id` whose
 * released models use the head_dims `conventions`. `shown` is a head_dim read from a tensor,
 * with the tensor's name.
 */
export function resolveHeads(id: string, conventions: readonly number[], width: number, opts: TransformerOptions, shown?: { headDim: number; tensor: string }): HeadCount {
  if (opts.heads !== undefined) {
    if (width % opts.heads !== 0) throw new ModelError('ConfigInvalid', `model config: heads ${opts.heads} does not divide the attention width ${width}`);
    return { heads: opts.heads, headDim: width / opts.heads, source: 'model config' };
  }
  if (shown && shown.headDim > 0 && width % shown.headDim === 0) {
    return { heads: width / shown.headDim, headDim: shown.headDim, source: `head_dim ${shown.headDim} from \`${shown.tensor}\`` };
  }
  const fits = conventions.filter((hd) => width % hd === 0);
  if (fits.length === 1) return { heads: width / fits[0], headDim: fits[0], source: `head_dim ${fits[0]} convention (${id})` };
  const why = fits.length === 0 ? `neither a multiple of ${conventions.join(' nor ')}` : `head_dim ${fits.join(' or ')} both fit`;
  throw new ModelError('Unsupported', `cannot tell the number of attention heads of a ${id} model with attention width ${width} (${why}): ${HINT}`);
}

/** Number of blocks `<blockPrefix>N.` present (N = 0, 1, ... without gaps). */
export function countBlocks(tensors: TensorMap, blockPrefix: string): number {
  const seen = new Set<number>();
  for (const name of tensors.keys()) {
    if (!name.startsWith(blockPrefix)) continue;
    const m = /^(\d+)\./.exec(name.slice(blockPrefix.length));
    if (m) seen.add(Number(m[1]));
  }
  for (let i = 0; i < seen.size; i++) if (!seen.has(i)) throw new ModelError('Unsupported', `transformer: block \`${blockPrefix}${i}\` is missing (blocks ${[...seen].sort((a, b) => a - b).join(', ')})`);
  if (seen.size === 0) throw new ModelError('Unsupported', `transformer: no \`${blockPrefix}N\` blocks`);
  return seen.size;
}

/** Shape of tensor `name`, or the one line saying it is missing / not `rank`-d. */
export function shapeOf(tensors: TensorMap, name: string, rank: number): readonly number[] {
  const t = tensors.get(name);
  if (!t) throw new ModelError('Unsupported', `transformer: \`${name}\` is missing`);
  if (t.shape.length !== rank) throw new ModelError('ShapeMismatch', `transformer: \`${name}\` must be ${rank}-d, got [${t.shape.join(', ')}]`);
  return t.shape;
}

/** What every config built from shapes says the same way: no file, nothing defaulted. */
export const FROM_SHAPES = { file: 'transformer', defaulted: [] as readonly string[], gemma: false, slidingWindow: undefined } as const;
