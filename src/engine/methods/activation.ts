/** Activation matching (paper §3.1): one assignment per group from activation correlations on training data. */
import { readModelConfig } from '../../core/families/modelConfig';
import { activationMatchingFromTensors } from '../compute/activationMatching';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { reportFor, trainingData } from './common';
import { lmActivationPerms } from './lmActivation';
import type { MatchingMethod } from './method';
import { denseTensors } from '../../core/heldTensor';

export const activation: MatchingMethod = {
  id: 'activation',
  run: async (run) => {
    const { req, spec, ctx } = run;
    const a = denseTensors(run.a);
    const b = denseTensors(run.b);
    if (lmCheckpointFamily(req.a)) return reportFor(spec, a, b, await lmActivationPerms(req, spec, a, b, ctx), 1);
    const data = await trainingData(req);
    const config = readModelConfig(req.a, req.model);
    const r = await activationMatchingFromTensors(spec, a, b, config, data, { signal: ctx.signal, onProgress: ctx.onProgress });
    if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
    return reportFor(spec, a, b, r.perms, 1);
  },
};
