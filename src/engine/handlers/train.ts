/**
 * `train`: trains an MLP on the data set's training split (for the demo and tests), reports
 * progress per 20 batches, saves it as safetensors with PyTorch names, and evaluates it on the
 * test split when one exists.
 */
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset } from '../../core/data';
import { encodeFromFloat32, writeSafetensors } from '../../core/safetensors';
import { currentBackend } from '../backend';
import type { HandlerContext } from '../handlerContext';
import { throwIfCancelled } from '../errors';
import type { TrainRequest, TrainResult } from '../protocol';
import { evaluateModel, toBatches } from '../compute/evaluate';
import { buildModel } from '../families/build';
import { trainMlp } from '../compute/train';

/** Saves PyTorch-named float32 tensors atomically (the writer uses temp file + rename). */
export async function saveTensors(out: string, tensors: ReadonlyMap<string, DenseTensor>, metadata: Record<string, string>, signal?: AbortSignal): Promise<void> {
  const sources = [...tensors].map(([name, t]) => ({
    name,
    dtype: 'F32',
    shape: t.shape,
    read: async () => encodeFromFloat32('F32', t.data),
  }));
  await writeSafetensors(out, sources, { metadata, signal });
}

export async function trainHandler(req: TrainRequest, ctx: HandlerContext): Promise<TrainResult> {
  const t0 = performance.now();
  ctx.onProgress({ stage: 'loading data', fraction: 0 });
  const train = await loadDataset(req.data, 'train');
  const trained = await trainMlp(train, {
    widths: req.widths,
    epochs: req.epochs,
    batchSize: req.batchSize,
    learningRate: req.learningRate,
    seed: req.seed,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
  });
  ctx.log(`train: seconds per epoch ${trained.epochSeconds.map((s) => s.toFixed(1)).join(', ')}`);
  throwIfCancelled(ctx.signal, 'training');
  await saveTensors(req.out, trained.tensors, {
    format: 'pt',
    'rebasin.trainedBy': 'rebasin train (tfjs)',
    'rebasin.widths': req.widths.join(','),
    'rebasin.epochs': String(req.epochs),
    'rebasin.seed': String(req.seed),
    'rebasin.data': train.source,
  }, ctx.signal);
  let testLoss: number | undefined;
  let testAcc: number | undefined;
  try {
    const test = await loadDataset({ ...req.data, limit: undefined }, 'test');
    const batches = toBatches(test, 2000);
    const model = buildModel(trained.tensors, { family: 'mlp' });
    try {
      const m = await evaluateModel(model, batches, ctx.signal);
      testLoss = m.loss;
      testAcc = m.acc;
    } finally {
      model.dispose();
      batches.dispose();
    }
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    ctx.log(`train: no test evaluation (${e instanceof Error ? e.message : String(e)})`);
  }
  return { out: req.out, seconds: (performance.now() - t0) / 1000, finalLoss: trained.finalLoss, testLoss, testAcc, backend: currentBackend() };
}
