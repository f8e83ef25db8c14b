/**
 * Activation matching of Hugging Face language models on token data (`req.data`, read like a
 * barrier's): the residual stream and the MLP hidden units (GPT-2; attention heads stay as they are).
 */
import type { PermSpec, TensorMap } from '../../core/checkpoint';
import { lmActivationMatching } from '../compute/activationMatching';
import type { HandlerContext } from '../dispatch';
import { EngineError } from '../errors';
import { tokenInput } from '../handlers/evaluateLmPath';
import { locateLmCheckpoint } from '../lm/checkpoint';
import { readLmConfig } from '../lm/config';
import { buildLm } from '../lm/model';
import type { AlignRequest } from '../protocol';

export async function lmActivationPerms(req: AlignRequest, spec: PermSpec, ta: TensorMap, tb: TensorMap, ctx: HandlerContext): Promise<Record<string, Int32Array>> {
  if (!req.data) throw new EngineError('InvalidRequest', 'activation matching needs token data (--data): it runs both language models on it');
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  if (config.family !== 'gpt2') throw new EngineError('InvalidRequest', `${paths.config}: activation matching of language models is implemented for GPT-2, not yet for ${config.modelType}`);
  const { input } = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer);
  // The residual stream's permutation is the one on the final norm; each block's MLP one on its c_fc bias.
  const prefix = [...ta.keys()].find((k) => k.endsWith('ln_f.weight'))?.slice(0, -'ln_f.weight'.length) ?? '';
  // Both are plain (non-block) axes: a 1-d norm scale and a 1-d bias.
  const plain = (tensor: string): string | undefined => {
    const entry = spec.axes[tensor]?.[0];
    return typeof entry === 'string' ? entry : undefined;
  };
  const which = {
    residual: plain(`${prefix}ln_f.weight`),
    mlp: Array.from({ length: config.layers }, (_, i) => plain(`${prefix}h.${i}.mlp.c_fc.bias`)),
  };
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

