/** Straight-through estimator (paper §3.3, Algorithm 2); options default from src/core/methods/ste.ts. */
import { readModelConfig } from '../../core/families/modelConfig';
import { defaultOptions } from '../../core/methods/registry';
import { steMatching } from '../compute/ste';
import { tfMatMul } from '../tfMatMul';
import { EngineError } from '../errors';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { reportFor, trainingData } from './common';
import type { MatchingMethod } from './method';
import { denseTensors } from '../../core/heldTensor';

export const ste: MatchingMethod = {
  id: 'ste',
  run: async (run) => {
    const { req, spec, ctx } = run;
    if (lmCheckpointFamily(req.a)) throw new EngineError('InvalidRequest', `${req.a}: the straight-through estimator is not implemented for language models: use --method weight or activation`);
    const a = denseTensors(run.a);
    const b = denseTensors(run.b);
    const data = await trainingData(req);
    const config = readModelConfig(req.a, req.model);
    const opts = req.ste ?? (defaultOptions('ste') as { epochs: number; batchSize: number; learningRate: number });
    const r = await steMatching(spec, a, b, data, {
      ...opts, seed: req.seed, maxIter: req.maxIter, matmul: tfMatMul, activation: config.activation, signal: ctx.signal, onProgress: ctx.onProgress,
    });
    return reportFor(spec, a, b, r.perms, r.epochLoss.length);
  },
};
