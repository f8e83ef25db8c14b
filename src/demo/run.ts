/**
 * The demo pipeline: train (or reuse) two MLPs, align B to A by weight matching, compute the
 * naive and aligned barrier curves on the test set, merge at the λ the aligned curve favours,
 * evaluate the merge, write the report. Every engine request carries the caller's signal, so
 * Ctrl-C stops the running step (the engine removes half-written outputs).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { mnistDataDir } from '../core/data';
import type { EngineClient } from '../engine/client';
import type { AlignResult, BarrierCurve, DataOptions } from '../engine/protocol';
import { cacheProblem, cachedModelPath, type TrainingRecipe } from './modelCache';
import { BATCH_SIZE, LEARNING_RATE, REFERENCE_EPOCHS, demoWidths, type DemoOptions } from './options';
import { writeReport, type ReportFiles } from './report';
import { combinedProgress, stepRunner } from './steps';
import { favouredLambdaIndex, midpointIndex, pointAt, type DemoSummary } from './summary';

export interface DemoIo {
  /** Lines for the user (stdout). */
  readonly say: (line: string) => void;
  /** Where progress bars go (stderr). */
  readonly progress?: NodeJS.WriteStream;
}

export interface DemoRun {
  readonly summary: DemoSummary;
  readonly files: ReportFiles;
}

const ALIGN_SEED = 0;
const MAX_ITER = 100;

export async function runDemo(opts: DemoOptions, client: EngineClient, io: DemoIo, signal: AbortSignal): Promise<DemoRun> {
  const started = performance.now();
  const steps = stepRunner(io.progress);
  const widths = demoWidths(opts);
  const data: DataOptions = { path: mnistDataDir(), ...(opts.limit !== undefined ? { limit: opts.limit } : {}) };
  const test: DataOptions = { ...data, split: 'test' };
  await fs.mkdir(path.join(opts.outDir, 'models'), { recursive: true });
  const backend = await client.backend();
  io.say(`Re-Basin demo: two ${widths.join('-')} ReLU MLPs on MNIST${opts.limit !== undefined ? ` (first ${opts.limit} images)` : ''}, ${opts.epochs} epoch(s), backend ${backend}, ${client.workers} worker(s)`);

  // ---------------------------------------------------------------- train (or reuse the cache)
  const recipes: TrainingRecipe[] = opts.seeds.map((seed) => ({ widths, epochs: opts.epochs, seed, batchSize: BATCH_SIZE, learningRate: LEARNING_RATE, ...(opts.limit !== undefined ? { limit: opts.limit } : {}) }));
  const files = recipes.map((r) => cachedModelPath(opts.outDir, r)) as [string, string];
  const problems = await Promise.all(files.map((f) => (opts.retrain ? Promise.resolve('--retrain') : cacheProblem(f, widths))));
  problems.forEach((p, i) => {
    if (p && p !== 'missing' && p !== '--retrain') io.say(`cached model ${path.basename(files[i])} is not usable (${p}); training it again`);
  });
  const toTrain = problems.map((p) => p !== undefined);
  if (toTrain.some(Boolean)) {
    const names = ['A', 'B'].filter((_, i) => toTrain[i]);
    await steps.run('train', async (onProgress) => {
      const parts = combinedProgress(names, onProgress);
      let k = 0;
      // Independent requests go to different pool workers: the two models train side by side.
      return Promise.all(recipes.map((r, i) => {
        if (!toTrain[i]) return Promise.resolve(undefined);
        const part = parts[k++];
        return client.request({ kind: 'train', data, widths, epochs: r.epochs, batchSize: r.batchSize, learningRate: r.learningRate, seed: r.seed, out: files[i] }, { signal, onProgress: part });
      }));
    }, (rs) => rs.map((r, i) => (r ? `${'AB'[i]} trained in ${r.seconds.toFixed(1)} s${r.testAcc !== undefined ? ` (test accuracy ${(r.testAcc * 100).toFixed(2)}%)` : ''}` : `${'AB'[i]} from the cache`)).join(', '));
  } else {
    io.say(`models: reusing ${path.basename(files[0])} and ${path.basename(files[1])} from ${path.dirname(files[0])} (cached; --retrain to train again)`);
  }

  // ---------------------------------------------------------------- align
  const alignedB = path.join(opts.outDir, 'B.aligned.safetensors');
  const align: AlignResult = await steps.run('align', (onProgress) => client.request({
    kind: 'align', a: files[0], b: files[1], out: alignedB, method: 'weight', seed: ALIGN_SEED, maxIter: MAX_ITER, includeMatrices: true,
  }, { signal, onProgress }), (r) => `${r.iterations} sweep(s), objective ${r.objectiveBefore.toFixed(1)} → ${r.objectiveAfter.toFixed(1)}${r.equivalence ? `, π(B) ≡ B: ${r.equivalence.ok ? 'yes' : 'NO'}` : ''}`);

  // ---------------------------------------------------------------- barrier curves
  // The aligned path is the naive path from A to the written π(B): no second matching run.
  const curve: BarrierCurve = await steps.run('barrier', async (onProgress) => {
    const half = (offset: number) => (p: { stage: string; fraction?: number; message?: string }) => onProgress({ ...p, fraction: p.fraction === undefined ? undefined : offset + p.fraction / 2 });
    const common = { kind: 'barrier', data: test, steps: opts.steps, align: false, seed: ALIGN_SEED, maxIter: MAX_ITER } as const;
    const naive = await client.request({ ...common, a: files[0], b: files[1] }, { signal, onProgress: half(0) });
    const aligned = await client.request({ ...common, a: files[0], b: alignedB }, { signal, onProgress: half(0.5) });
    return { lambdas: naive.lambdas, naive: naive.naive, aligned: aligned.naive, barrier: { naive: naive.barrier.naive, aligned: aligned.barrier.naive } };
  }, (c) => `test barrier naive ${c.barrier.naive.toFixed(4)}, aligned ${(c.barrier.aligned ?? NaN).toFixed(4)}`);
  const alignedCurve = curve.aligned!;

  // ---------------------------------------------------------------- merge at the favoured λ
  const best = favouredLambdaIndex(curve.lambdas, alignedCurve.loss);
  const lambda = curve.lambdas[best];
  const merged = path.join(opts.outDir, 'merged.safetensors');
  const mergeEval = await steps.run('merge', async (onProgress) => {
    // B is already aligned (π(B) above), so the merge interpolates without matching again.
    onProgress({ stage: 'merging', fraction: 0, message: `(1−λ)·A + λ·π(B) at λ=${lambda.toFixed(3)}` });
    await client.request({ kind: 'merge', inputs: [files[0], alignedB], out: merged, lambda, align: false, seed: ALIGN_SEED, maxIter: MAX_ITER }, { signal });
    onProgress({ stage: 'evaluating', fraction: 0.5, message: 'merged model on the test set' });
    return client.request({ kind: 'evaluatePath', a: merged, b: merged, lambdas: [0], data: test }, { signal });
  }, (r) => `λ=${lambda.toFixed(3)}: test loss ${r.loss[0].toFixed(4)}, accuracy ${(r.acc[0] * 100).toFixed(2)}%`);

  // ---------------------------------------------------------------- summary and report
  const last = curve.lambdas.length - 1;
  const mid = midpointIndex(curve.lambdas);
  const timings = Object.fromEntries(steps.seconds);
  const summaryOf = (extra: Record<string, number>): DemoSummary => ({
    setup: { widths, epochs: opts.epochs, seeds: opts.seeds, batchSize: BATCH_SIZE, learningRate: LEARNING_RATE, steps: opts.steps, ...(opts.limit !== undefined ? { limit: opts.limit } : {}), referenceEpochs: REFERENCE_EPOCHS },
    backend,
    workers: client.workers,
    models: { a: files[0], b: files[1], alignedB, merged, trained: [toTrain[0], toTrain[1]] },
    results: {
      a: pointAt(curve.naive, curve.lambdas, 0),
      b: pointAt(curve.naive, curve.lambdas, last),
      naiveMidpoint: pointAt(curve.naive, curve.lambdas, mid),
      alignedMidpoint: pointAt(alignedCurve, curve.lambdas, mid),
      merge: { lambda, loss: mergeEval.loss[0], acc: mergeEval.acc[0] },
    },
    barrier: { naive: curve.barrier.naive, aligned: curve.barrier.aligned ?? NaN },
    curve,
    align: { iterations: align.iterations, objectiveBefore: align.objectiveBefore, objectiveAfter: align.objectiveAfter, groups: align.groups },
    timings: { ...timings, ...extra },
    totalSeconds: (performance.now() - started) / 1000,
  });
  const { summaryData: summary, ...filesOut } = await steps.run('report', async (onProgress) => {
    onProgress({ stage: 'drawing', fraction: 0, message: 'heatmaps, curve, report.html' });
    return writeReport(opts.outDir, summaryOf({}), align, (seconds) => summaryOf({ report: seconds }), signal);
  }, (r) => `${r.heatmaps.length + (r.curve ? 1 : 0)} image(s), report.html, summary.json`);
  return { summary, files: filesOut };
}
