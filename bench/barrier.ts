/**
 * Barrier-curve benchmark: two 784-512-512-512-10 MLPs trained 1 epoch each on the 60k MNIST
 * training images (seeds 0 and 1; falls back to untrained PyTorch-default init with `--no-train`),
 * weight matching (tfjs matmul), then the naive and the aligned path at 25 lambdas on the 10k
 * test images, in this one thread on the best backend present. Prints seconds per stage.
 * Run: node --import tsx bench/barrier.ts [--no-train]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lambdaGrid, barrierFromCurve } from '../src/core/barrier';
import { loadDataset, mnistDataDir } from '../src/core/data';
import { weightMatching } from '../src/core/matching/weightMatching';
import { inferSpec } from '../src/core/permspec';
import { initBackend } from '../src/engine/backend';
import { initMlp, trainMlp } from '../src/engine/compute';
import type { HandlerContext } from '../src/engine/handlerContext';
import { evaluatePathHandler } from '../src/engine/handlers/evaluatePath';
import { saveTensors } from '../src/engine/handlers/train';
import { tfMatMul } from '../src/engine/tfMatMul';

const WIDTHS = [784, 512, 512, 512, 10];

export async function benchBarrier(train = true): Promise<string[]> {
  const lines: string[] = [];
  const say = (s: string): void => {
    lines.push(s);
    if (process.env.REBASIN_BENCH_VERBOSE) console.error(s);
  };
  const backend = await initBackend('auto');
  say(`barrier bench: backend ${backend}, MLP ${WIDTHS.join('-')}, 25 lambdas, 10k MNIST test images, one thread`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-barrier-'));
  try {
    const files = [path.join(dir, 'a.safetensors'), path.join(dir, 'b.safetensors')];
    if (train) {
      const data = await loadDataset({ path: mnistDataDir() }, 'train');
      for (const [i, f] of files.entries()) {
        const t0 = performance.now();
        const r = await trainMlp(data, { widths: WIDTHS, epochs: 1, batchSize: 500, learningRate: 1e-3, seed: i });
        say(`train model ${i} (1 epoch, 60k images, batch 500): ${((performance.now() - t0) / 1000).toFixed(1)} s, final loss ${r.finalLoss.toFixed(4)}`);
        await saveTensors(f, r.tensors, { format: 'pt' });
      }
    } else {
      for (const [i, f] of files.entries()) await saveTensors(f, initMlp(WIDTHS, i), { format: 'pt' });
      say('models: untrained (PyTorch default init, seeds 0 and 1)');
    }
    const { openCheckpoint } = await import('../src/core/safetensors');
    const { readTensors } = await import('../src/engine/compute');
    const [ca, cb] = await Promise.all(files.map((f) => openCheckpoint(f)));
    const [a, b] = await Promise.all([readTensors(ca), readTensors(cb)]);
    const spec = inferSpec(ca.tensors).spec;
    await Promise.all([ca.close(), cb.close()]);
    let t0 = performance.now();
    const wm = await weightMatching(spec, a, b, { seed: 0, maxIter: 100, matmul: tfMatMul });
    say(`weight matching: ${((performance.now() - t0) / 1000).toFixed(2)} s, ${wm.iterations} sweeps, objective ${wm.objectiveBefore.toFixed(1)} -> ${wm.objectiveAfter.toFixed(1)}`);
    const lambdas = lambdaGrid(25);
    const ctx: HandlerContext = { signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined };
    for (const [label, perms] of [['naive', undefined], ['aligned', wm.perms]] as const) {
      t0 = performance.now();
      const r = await evaluatePathHandler(
        {
          kind: 'evaluatePath',
          a: files[0],
          b: files[1],
          perms: perms && Object.fromEntries(Object.entries(perms).map(([k, v]) => [k, Array.from(v)])),
          lambdas,
          data: { path: mnistDataDir() },
        },
        ctx,
      );
      const s = (performance.now() - t0) / 1000;
      const mid = r.loss[12];
      say(`${label} path: ${s.toFixed(1)} s (${(s / lambdas.length).toFixed(2)} s per lambda), barrier ${barrierFromCurve(r.lambdas, r.loss).toFixed(3)}, midpoint loss ${mid.toFixed(3)} acc ${r.acc[12].toFixed(3)}, ends ${r.loss[0].toFixed(3)} / ${r.loss[24].toFixed(3)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  benchBarrier(!process.argv.includes('--no-train')).then(
    (lines) => {
      for (const l of lines) console.log(l);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
