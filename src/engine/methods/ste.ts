/** Straight-through estimator (paper §3.3, Algorithm 2) for MLPs and language models; options default from src/core/methods/ste.ts. */
import { readModelConfig } from '../../core/families/modelConfig';
import { defaultOptions } from '../../core/methods/registry';
import { steMatching } from '../compute/ste';
import { tfMatMul } from '../tfMatMul';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { reportFor, trainingData } from './common';
import { lmStePerms } from './lmSte';
import type { MatchingMethod } from './method';
import { denseTensors } from '../../core/heldTensor';

export const ste: MatchingMethod = {
  id: 'ste',
  run: async (run) => {
    const { req, spec, ctx } = run;
    const a = denseTensors(run.a);
    const b = denseTensors(run.b);
    if (lmCheckpointFamily(req.a)) {
      const r = await lmStePerms(req, spec, a, b, ctx);
      return reportFor(spec, a, b, r.perms, r.steps);
    }
    const data = await trainingData(req);
    const config = readModelConfig(req.a, req.model);
    const opts = req.ste ?? (defaultOptions('ste') as { epochs: number; batchSize: number; learningRate: number });
    const r = await steMatching(spec, a, b, data, {
      ...opts, seed: req.seed, maxIter: req.maxIter, matmul: tfMatMul, activation: config.activation, signal: ctx.signal, onProgress: ctx.onProgress,
    });
    return reportFor(spec, a, b, r.perms, r.epochLoss.length);
  },
};
