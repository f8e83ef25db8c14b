/**
 * What a transformer's weights cannot say, read from the model config (`<checkpoint>.rebasin.json`
 * or `--model`), e.g. `{ "family": "transformer", "heads": 12 }`:
 *
 * - `heads`: attention heads (query heads for grouped-query attention).
 * - `kvHeads`: key/value heads; else k_proj's width / head_dim.
 * - `eps`: norm epsilon; else 1e-5 (GPT-2 `layer_norm_epsilon`, Llama 2/3 `rms_norm_eps`) or 1e-12 (BERT).
 * - `gelu`: "exact" or "tanh"; else tanh for GPT-2 (`gelu_new`), exact for BERT (`gelu`).
 * - `ropeTheta`: rotary base; else the checkpoint's `rotary_emb.inv_freq`, else 10000.
 *
 * Without `heads`, the head count comes from a tensor that shows head_dim (rotary `inv_freq` has
 * head_dim / 2 entries; Qwen3's `q_norm` has head_dim), else from the family's head_dim
 * convention when it gives one answer: 64 for GPT-2 and BERT (every released size); 64 or 128
 * for Llama, so only a width divisible by exactly one of them is decided.
 */
import type { TransformerKind } from '../../core/spec/inferTransformer';
import type { ModelConfig } from './modelConfig';
import { ModelError } from './modelErrors';
import type { GeluKind } from './transformerLayers';

export interface TransformerOptions {
  readonly heads?: number;
  readonly kvHeads?: number;
  readonly eps?: number;
  readonly gelu?: GeluKind;
  readonly ropeTheta?: number;
}

const HINT = 'give "heads" in <checkpoint>.rebasin.json or the --model file';

/** The transformer keys of a model config (validated; unknown to the other families, so read here). */
export function transformerOptions(config: ModelConfig): TransformerOptions {
  const raw = config as ModelConfig & Record<string, unknown>;
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
 * Attention heads of a projection `width` wide (heads x head_dim). `shown` is a head_dim read
 * from a tensor, with the tensor's name.
 */
export function resolveHeads(kind: TransformerKind, width: number, opts: TransformerOptions, shown?: { headDim: number; tensor: string }): HeadCount {
  if (opts.heads !== undefined) {
    if (width % opts.heads !== 0) throw new ModelError('ConfigInvalid', `model config: heads ${opts.heads} does not divide the attention width ${width}`);
    return { heads: opts.heads, headDim: width / opts.heads, source: 'model config' };
  }
  if (shown && shown.headDim > 0 && width % shown.headDim === 0) {
    return { heads: width / shown.headDim, headDim: shown.headDim, source: `head_dim ${shown.headDim} from \`${shown.tensor}\`` };
  }
  const conventions = kind === 'llama' ? [64, 128] : [64];
  const fits = conventions.filter((hd) => width % hd === 0);
  if (fits.length === 1) return { heads: width / fits[0], headDim: fits[0], source: `head_dim ${fits[0]} convention (${kind})` };
  const why = fits.length === 0 ? `neither a multiple of ${conventions.join(' nor ')}` : `head_dim ${fits.join(' or ')} both fit`;
  throw new ModelError('Unsupported', `cannot tell the number of attention heads of a ${kind} model with attention width ${width} (${why}): ${HINT}`);
}
