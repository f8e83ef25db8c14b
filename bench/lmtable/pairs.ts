/**
 * The comparison table's model pairs: each family trained twice (seeds 1 and 2) on the same
 * data with the tests' trainers (test/unit/helpers/trainGpt2.ts, trainLm.ts, trainVit.ts) and
 * written as Hugging Face folders under bench-output/lmtable/<family>-<shape>/seed-<s>/, cached:
 * a folder already there (same shape and training in its name) is reused. Each folder is written
 * into a temporary sibling and renamed into place, so an interrupted run leaves no half a model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainTinyGpt2, writeGpt2Folder, type TinyGpt2 } from '../../test/unit/helpers/trainGpt2';
import { bertConfig, llamaConfig, trainTinyBert, trainTinyLlama, writeHfFolder, type TinyBert, type TinyLlama } from '../../test/unit/helpers/trainLm';
import { trainTinyVit, vitConfig, type TinyVit } from '../../test/unit/helpers/trainVit';
import { loadDataset, mnistDataDir } from '../../src/core/data';
import { MASK_ID, tokenizerJson, windows, type Corpus } from './corpus';

export const SEQ_LEN = 32;

export interface Training {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
}

export interface PairSpec {
  readonly id: string;
  /** What the table calls it, with its size. */
  readonly label: string;
  /** `text`: the names corpus (LMs); `mnist`: MNIST images (ViT). */
  readonly data: 'text' | 'mnist';
  /** Folder name under bench-output/lmtable: the shape and the training, so a change retrains. */
  readonly key: string;
  /** Trains one model from `seed` and writes its folder (config.json, model.safetensors, tokenizer.json for LMs). */
  train(dir: string, seed: number, corpus: Corpus): Promise<{ loss: number }>;
}

function shapeKey(id: string, shape: object, t: Training): string {
  return `${id}-${Object.values(shape).join('x')}-${t.steps}s${t.batch}b${t.lr}`;
}

function gpt2(shape: Omit<TinyGpt2, 'vocab' | 'positions'>, t: Training): PairSpec {
  return {
    id: 'gpt2',
    label: `GPT-2 (${shape.layers} layers, width ${shape.d}, ${shape.heads} heads)`,
    data: 'text',
    key: shapeKey('gpt2', shape, t),
    async train(dir, seed, corpus) {
      const m: TinyGpt2 = { ...shape, vocab: corpus.vocab.size, positions: SEQ_LEN };
      const r = await trainTinyGpt2(m, windows(corpus.train, corpus.vocab, SEQ_LEN), { ...t, seed });
      await writeGpt2Folder(dir, m, r.weights);
      return r;
    },
  };
}

function llama(shape: Omit<TinyLlama, 'vocab' | 'positions'>, t: Training): PairSpec {
  return {
    id: 'llama',
    label: `Llama (${shape.layers} layers, width ${shape.d}, ${shape.heads} heads in ${shape.kvHeads} KV groups, RoPE)`,
    data: 'text',
    key: shapeKey('llama', shape, t),
    async train(dir, seed, corpus) {
      const m: TinyLlama = { ...shape, vocab: corpus.vocab.size, positions: SEQ_LEN };
      const r = await trainTinyLlama(m, windows(corpus.train, corpus.vocab, SEQ_LEN), { ...t, seed });
      await writeHfFolder(dir, llamaConfig(m), r.weights);
      return r;
    },
  };
}

function bert(shape: Omit<TinyBert, 'vocab' | 'positions'>, t: Training): PairSpec {
  return {
    id: 'bert',
    label: `BERT masked LM (${shape.layers} layers, width ${shape.d}, ${shape.heads} heads)`,
    data: 'text',
    key: shapeKey('bert', shape, t),
    async train(dir, seed, corpus) {
      const m: TinyBert = { ...shape, vocab: corpus.vocab.size, positions: SEQ_LEN };
      const r = await trainTinyBert(m, windows(corpus.train, corpus.vocab, SEQ_LEN), { ...t, seed, maskId: MASK_ID });
      await writeHfFolder(dir, bertConfig(m), r.weights);
      return r;
    },
  };
}

function vit(shape: TinyVit, t: Training & { readonly images: number }): PairSpec {
  return {
    id: 'vit',
    label: `ViT (${shape.layers} layers, width ${shape.d}, ${shape.heads} heads, ${shape.patch}x${shape.patch} patches of MNIST)`,
    data: 'mnist',
    key: shapeKey('vit', shape, t),
    async train(dir, seed) {
      const r = await trainTinyVit(shape, await loadDataset({ path: mnistDataDir(), limit: t.images }, 'train'), { ...t, seed });
      await writeHfFolder(dir, vitConfig(shape), r.weights);
      return r;
    },
  };
}

/**
 * The pairs, sized so the whole table runs in about 10 to 15 minutes on 2 cores (training aside).
 * GPT-2 has 4 layers of width 48 (trained in 128 to 230 s per model on 2 loaded cores, measured):
 * the 2-layer width-32 pair left a naive barrier of 1.04; this one 0.83, with held-out loss 2.34.
 */
export const PAIRS: readonly PairSpec[] = [
  gpt2({ layers: 4, d: 48, heads: 4 }, { steps: 500, batch: 16, lr: 5e-3 }),
  llama({ layers: 2, d: 32, heads: 4, kvHeads: 2, headDim: 8, inter: 64 }, { steps: 200, batch: 16, lr: 1e-2 }),
  bert({ layers: 2, d: 32, heads: 4, inter: 64 }, { steps: 400, batch: 16, lr: 3e-3 }),
  vit({ layers: 2, d: 32, heads: 4, inter: 64, patch: 7, image: 28, channels: 1, classes: 10 }, { steps: 150, batch: 32, lr: 3e-3, images: 5000 }),
];

/** The pair's two folders, trained and written unless cached. */
export async function pairFolders(spec: PairSpec, outDir: string, corpus: Corpus, root: string, log: (line: string) => void): Promise<[string, string]> {
  const dirs: string[] = [];
  for (const seed of [1, 2]) {
    const dir = path.join(outDir, spec.key, `seed-${seed}`);
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
      const tmp = `${dir}.partial`;
      fs.rmSync(tmp, { recursive: true, force: true });
      const t0 = performance.now();
      const r = await spec.train(tmp, seed, corpus);
      if (spec.data === 'text') fs.writeFileSync(path.join(tmp, 'tokenizer.json'), tokenizerJson(corpus.vocab));
      fs.renameSync(tmp, dir);
      log(`trained ${spec.id} seed ${seed} in ${((performance.now() - t0) / 1000).toFixed(1)} s (last training loss ${r.loss.toFixed(3)}) -> ${path.relative(root, dir)}`);
    }
    dirs.push(dir);
  }
  return [dirs[0], dirs[1]];
}
