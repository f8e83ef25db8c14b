/**
 * Activation matching of Hugging Face language models (GPT-2, the Llama family, BERT) on token
 * data (`req.data`, read like a barrier's): the residual stream, the MLP hidden units and, when
 * the spec has them, the attention heads with their inner permutations.
 */
import type { PermSpec, TensorMap } from '../../core/checkpoint';
import { lmActivationMatching } from '../compute/activationMatching';
import type { HandlerContext } from '../dispatch';
import { EngineError } from '../errors';
import { tokenInput } from '../handlers/evaluateLmPath';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig } from '../lm/config';
import { lmFeatureAxes } from '../lm/featureAxes';
import { namePrefix } from '../lm/layers';
import { buildLm } from '../lm/model';
import type { AlignRequest } from '../protocol';

export async function lmActivationPerms(req: AlignRequest, spec: PermSpec, ta: TensorMap, tb: TensorMap, ctx: HandlerContext): Promise<Record<string, Int32Array>> {
  if (!req.data) throw new EngineError('InvalidRequest', 'activation matching needs token data (--data): it runs both language models on it');
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  const { input } = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer);
  const which = lmFeatureAxes(spec, config, namePrefix(ta, config, paths.weights));
  const a = buildLm(ta, config, paths.weights);
  try {
    const b = buildLm(tb, config, req.b);
    try {
      const r = await lmActivationMatching(spec, a, b, input, which, { signal: ctx.signal, onProgress: ctx.onProgress });
      if (r.unobserved.length) ctx.log(`activation matching: no activation exposes ${r.unobserved.join(', ')}; left as the identity`);
      return r.perms;
    } finally {
      b.dispose();
    }
  } finally {
    a.dispose();
  }
}

