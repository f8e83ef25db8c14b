/**
 * The seeded mask of a masked-LM loss (BERT: Devlin et al. 2019, section 3.1, as
 * `transformers`' DataCollatorForLanguageModeling applies it):
 * - one uniform draw per token, in row-major order: a token is selected when its draw is below
 *   0.15, unless it is one of the tokenizer's special tokens ([CLS], [SEP], [PAD], ...);
 * - a second draw per selected token: below 0.8 its input becomes the mask token, below 0.9 a
 *   uniformly random token id (a third draw), otherwise it is kept;
 * - the loss and accuracy are taken at the selected positions only, against the original ids.
 * The same seed gives the same mask, so every model on a barrier path sees the same inputs.
 */
import { mulberry32 } from '../matching/prng';
import { DataError } from './errors';

export const MASK_RATE = 0.15;

export interface MaskedLmBatch {
  /** The corrupted input ids [n, t]. */
  readonly input: Int32Array;
  /** Flat indices (sequence * t + position) of the selected tokens, increasing. */
  readonly positions: Int32Array;
  /** The original ids at those positions. */
  readonly targets: Int32Array;
}

export interface MaskOptions {
  readonly maskId: number;
  readonly vocab: number;
  readonly seed: number;
  /** Ids never selected. */
  readonly specialIds?: ReadonlySet<number>;
}

export function maskTokens(ids: Int32Array, opts: MaskOptions, source: string): MaskedLmBatch {
  const rand = mulberry32(opts.seed);
  const input = ids.slice();
  const positions: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const pick = rand() < MASK_RATE;
    if (!pick || opts.specialIds?.has(ids[i])) continue;
    positions.push(i);
    const u = rand();
    if (u < 0.8) input[i] = opts.maskId;
    else if (u < 0.9) input[i] = Math.min(opts.vocab - 1, Math.floor(rand() * opts.vocab));
  }
  if (positions.length === 0) throw new DataError('BadShape', `${source}: no token was selected for the masked-LM loss (${ids.length} tokens): give more data`, source);
  const pos = Int32Array.from(positions);
  return { input, positions: pos, targets: Int32Array.from(pos, (i) => ids[i]) };
}
