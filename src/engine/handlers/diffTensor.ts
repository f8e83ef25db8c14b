/**
 * `diffTensor` request: one tensor of a diff drawn for the diff view (src/core/diff/tensorPicture):
 * histograms of A and B, or of A and π(B) when the alignment's permutations are given (applied
 * with the spec the alignment used: the same file, or the same inference from A's names and shapes).
 */
import { tensorPicture } from '../../core/diff';
import { axisPermutations } from '../../core/matching/permute';
import type { Permutations } from '../../core/checkpoint';
import type { HandlerContext } from '../handlerContext';
import { EngineError, throwIfCancelled } from '../errors';
import { base, closeAll, openAll, specFor } from '../loadTensors';
import type { DiffTensorRequest, TensorPictureResult } from '../protocol';

export async function diffTensorHandler(req: DiffTensorRequest, ctx: HandlerContext): Promise<TensorPictureResult> {
  const [a, b] = await openAll([req.a, req.b]);
  try {
    const ta = a.get(req.tensor);
    if (!ta) throw new EngineError('InvalidRequest', `${base(req.a)}: tensor \`${req.tensor}\` not found`, req.a);
    let permutations: (Int32Array | null)[] | undefined;
    if (req.perms) {
      const { spec } = await specFor(req.spec, a, [b], req.model);
      const perms: Permutations = Object.fromEntries(Object.entries(req.perms).map(([k, p]) => [k, Int32Array.from(p)]));
      permutations = axisPermutations(spec, perms, req.tensor, ta.shape.length);
    }
    const what = `Drawing \`${req.tensor}\` of ${base(req.a)} and ${req.perms ? 'π(B) ' : ''}${base(req.b)}`;
    ctx.onProgress({ stage: 'diff', message: what });
    try {
      return await tensorPicture(a, b, req.tensor, {
        ...(permutations ? { permutations } : {}),
        ...(req.bins !== undefined ? { bins: req.bins } : {}),
        ...(req.maxSide !== undefined ? { maxSide: req.maxSide } : {}),
        beforeChunk: () => throwIfCancelled(ctx.signal, 'diff'),
        onProgress: (done, total) => ctx.onProgress({ stage: 'diff', fraction: done / total, message: `${what}: pass ${done * 2 <= total ? 1 : 2} of 2` }),
      });
    } catch (e) {
      if (e instanceof EngineError || !(e instanceof Error)) throw e;
      // One line naming the file by its base name, as every engine message does.
      throw new EngineError('InvalidRequest', e.message.split(req.a).join(base(req.a)).split(req.b).join(base(req.b)), req.b);
    }
  } finally {
    await closeAll([a, b]);
  }
}
