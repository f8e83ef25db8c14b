/**
 * `rebasin barrier` on Hugging Face language models (issue 13 "Done when"): two tiny GPT-2
 * models trained here from different seeds on token data (next-token loss, Adam), written as
 * Hugging Face folders in a temp folder; the barrier job (built CLI, one worker) gives endpoint
 * losses and accuracies equal to a float64 reference forward pass, perplexity = exp(loss), the
 * aligned path's far end the same function as B, and an aligned barrier below the naive one
 * (weight matching, activation matching on the tokens, and the straight-through estimator through
 * `align` and `barrier --method ste`; cancelled during its steps, STE writes nothing).
 * Also its one-line errors on token data: ids over the vocabulary, sequences longer than the
 * model's positions, raw text without a tokenizer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../../src/engine/backend';
import { EngineClient } from '../../../src/engine/client';
import { EngineError } from '../../../src/engine/errors';
import type { BarrierResult } from '../../../src/engine/protocol';
import { crossEntropyRow, gpt2Logits, type RefWeights } from '../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { markovTokens, trainTinyGpt2, writeGpt2Folder, writeTokensNpy, type TinyGpt2 } from '../helpers/trainGpt2';

const root = path.join(__dirname, '..', '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
// One block with one head: the spec permutes the residual stream and the MLP units but not yet heads
// (heads come with issue 13 points 1-3), so a pair whose symmetry is mostly those is used.
const MODEL: TinyGpt2 = { layers: 1, d: 32, heads: 1, vocab: 24, positions: 16 };
const T = 16;
const TRAIN = 256;
const EVAL = 32;

function run(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Mean next-token loss and accuracy over the N x (T - 1) positions, from float64 logits. */
function reference(w: RefWeights, ids: Int32Array, n: number): { loss: number; acc: number } {
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < n; s++) {
    const seq = [...ids.subarray(s * T, (s + 1) * T)];
    const logits = gpt2Logits(w, seq, { layers: MODEL.layers, heads: MODEL.heads, eps: 1e-5, act: 'gelu_tanh', tied: true });
    for (let p = 0; p < T - 1; p++) {
      const r = crossEntropyRow(logits, p, MODEL.vocab, seq[p + 1]);
      loss += r.loss;
      correct += r.correct ? 1 : 0;
    }
  }
  const positions = n * (T - 1);
  return { loss: loss / positions, acc: correct / positions };
}

describe('rebasin barrier on two trained tiny GPT-2 models', () => {
  let tmp: TmpDir;
  let evalIds: Int32Array;
  const weights: RefWeights[] = [];
  const dirA = (): string => path.join(tmp.path, 'gpt2-a');
  const dirB = (): string => path.join(tmp.path, 'gpt2-b');
  const data = (): string => path.join(tmp.path, 'eval.npy');

  before(async () => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    await initBackend('wasm');
    tmp = await makeTmpDir('rebasin-lm-barrier-');
    // One "language" (a sparse Markov chain): the first sequences train, the rest evaluate.
    const all = markovTokens(TRAIN + EVAL, T, MODEL.vocab, 7);
    const train = { ids: all.subarray(0, TRAIN * T), n: TRAIN, t: T };
    evalIds = all.slice(TRAIN * T);
    writeTokensNpy(data(), evalIds, EVAL, T);
    for (const [seed, dir] of [[1, dirA()], [2, dirB()]] as const) {
      const r = await trainTinyGpt2(MODEL, train, { seed, steps: 100, batch: 16, lr: 2e-2 });
      weights.push(r.weights);
      await writeGpt2Folder(dir, MODEL, r.weights);
    }
  });
  after(() => tmp?.remove());

  it('gives reference endpoint losses and an aligned barrier below the naive one', () => {
    const r = run(['barrier', dirA(), dirB(), '--data', data(), '--steps', '5', '--workers', '1', '--backend', 'wasm', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as BarrierResult;
    const [refA, refB] = weights.map((w) => reference(w, evalIds, EVAL));
    const last = out.lambdas.length - 1;
    assert.deepEqual(out.lambdas, [0, 0.25, 0.5, 0.75, 1]);
    const close = (got: number, want: number, what: string): void => assert.ok(Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${what}: ${got} vs reference ${want}`);
    close(out.naive.loss[0], refA.loss, 'loss of A');
    close(out.naive.loss[last], refB.loss, 'loss of B');
    assert.ok(out.aligned, 'an aligned path');
    close(out.aligned.loss[0], refA.loss, 'aligned path at A');
    // pi(B) computes the same function as B.
    close(out.aligned.loss[last], refB.loss, 'loss of pi(B)');
    assert.equal(out.naive.acc[0], refA.acc);
    assert.equal(out.naive.acc[last], refB.acc);
    for (const m of [out.naive, out.aligned]) {
      assert.ok(m.perplexity, 'perplexity along the path');
      m.perplexity.forEach((p, i) => assert.ok(Math.abs(p - Math.exp(m.loss[i])) <= 1e-9 * p));
    }
    // The trained models are real: far below the uniform guess's log(vocab).
    assert.ok(refA.loss < 0.6 * Math.log(MODEL.vocab) && refB.loss < 0.6 * Math.log(MODEL.vocab), `trained losses ${refA.loss}, ${refB.loss}`);
    assert.ok(out.barrier.aligned !== undefined && out.barrier.aligned < out.barrier.naive, `barriers: naive ${out.barrier.naive}, aligned ${out.barrier.aligned}`);
    assert.equal(out.lm?.objective, 'causal');
    assert.equal(out.lm?.positions, EVAL * (T - 1));
    assert.equal(typeof out.seconds, 'number');
    assert.equal(out.backend, 'wasm');
  });

  it('aligns by activation matching on the tokens: barrier below the naive one, same endpoints', () => {
    const r = run(['barrier', dirA(), dirB(), '--data', data(), '--steps', '5', '--workers', '1', '--backend', 'wasm', '--method', 'activation', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as BarrierResult;
    assert.equal(out.alignedFrom?.method, 'activation');
    assert.ok(out.aligned);
    const last = out.lambdas.length - 1;
    assert.ok(Math.abs(out.aligned.loss[last] - out.naive.loss[last]) <= 1e-4, `pi(B) ${out.aligned.loss[last]} vs B ${out.naive.loss[last]}`);
    assert.ok(out.barrier.aligned !== undefined && out.barrier.aligned < out.barrier.naive, `barriers: naive ${out.barrier.naive}, aligned ${out.barrier.aligned}`);
  });

  it('aligns by the straight-through estimator (align and barrier --method ste): B\'s function kept, barrier below the naive one', () => {
    const ste = ['--method', 'ste', '--ste-epochs', '1', '--ste-batch', '8', '--ste-lr', '0.01'];
    const out = path.join(tmp.path, 'by-ste');
    const al = run(['align', dirA(), dirB(), '--data', data(), '--out', out, '--workers', '1', '--backend', 'wasm', ...ste, '--json']);
    assert.equal(al.code, 0, al.stderr);
    assert.equal((JSON.parse(al.stdout.trim()) as { method?: string }).method, 'ste');
    const r = run(['barrier', dirA(), dirB(), '--data', data(), '--steps', '3', '--workers', '1', '--backend', 'wasm', ...ste, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim()) as BarrierResult;
    assert.equal(res.alignedFrom?.method, 'ste');
    assert.ok(res.aligned);
    const last = res.lambdas.length - 1;
    assert.ok(Math.abs(res.aligned.loss[last] - res.naive.loss[last]) <= 1e-4, `pi(B) ${res.aligned.loss[last]} vs B ${res.naive.loss[last]}`);
    assert.ok(res.barrier.aligned !== undefined && res.barrier.aligned < res.barrier.naive, `barriers: naive ${res.barrier.naive}, aligned ${res.barrier.aligned}`);
  });

  it('cancels an STE alignment of language models during its steps, writing nothing', async () => {
    const client = EngineClient.start({ backend: 'wasm', workers: 1, workerScript: path.join(root, 'dist', 'worker.js') });
    try {
      const controller = new AbortController();
      const out = path.join(tmp.path, 'cancelled-ste');
      let stepsSeen = 0;
      const pending = client.request(
        { kind: 'align', a: dirA(), b: dirB(), out, method: 'ste', data: { path: data() }, ste: { epochs: 50, batchSize: 4, learningRate: 0.01 }, seed: 0, maxIter: 20 },
        {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.stage === 'ste' && ++stepsSeen === 1) controller.abort();
          },
        },
      );
      await assert.rejects(pending, (e: unknown) => e instanceof EngineError && e.kind === 'Cancelled');
      assert.equal(stepsSeen >= 1, true);
      assert.deepEqual(readdirSync(tmp.path).filter((n) => n.startsWith('cancelled-ste')), []);
    } finally {
      await client.dispose();
    }
  });

  it('refuses ids over the vocabulary, sequences over the positions and text without a tokenizer, naming the file', () => {
    const big = path.join(tmp.path, 'big-ids.npy');
    const ids = evalIds.slice(0, 2 * T);
    ids[T + 3] = MODEL.vocab;
    writeTokensNpy(big, ids, 2, T);
    const long = path.join(tmp.path, 'long.npy');
    writeTokensNpy(long, new Int32Array(2 * (MODEL.positions + 1)), 2, MODEL.positions + 1);
    const text = path.join(tmp.path, 'text.txt');
    writeFileSync(text, 'no tokenizer beside these checkpoints\n');
    for (const [file, words] of [[big, /vocabulary|vocab/], [long, /position/], [text, /tokenizer/]] as const) {
      const r = run(['barrier', dirA(), dirB(), '--data', file, '--steps', '2', '--workers', '1', '--backend', 'wasm', '--no-align']);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('rebasin:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].includes(path.basename(file)), lines[0]);
      assert.match(lines[0], words);
    }
  });
});
