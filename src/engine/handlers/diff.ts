/**
 * `diff` request: how far B is from A per tensor, per layer and in total (src/core/diff), read in
 * chunks with float64 sums. With `align`, B is first aligned onto A by the align request's own
 * handler (same method, spec and options as `rebasin align`, nothing written), and A is also
 * compared with π(B): each moved tensor's permuted bytes are the ones `align` would write.
 */
import { diffCheckpoints } from '../../core/diff';
import { axisPermutations } from '../../core/matching/permute';
import { formatBytes } from '../../../shared/bytes';
import { MAX_ITER, SEED } from '../../core/methods';
import type { Permutations } from '../../core/checkpoint';
import type { HandlerContext } from '../handlerContext';
import { EngineError, throwIfCancelled } from '../errors';
import { base, closeAll, openAll, specFor } from '../loadTensors';
import type { AlignResult, DiffRequest, DiffResult } from '../protocol';
import { alignHandler } from './align';

/** Share of the progress bar the alignment takes when there is one (reading both checkpoints twice is the rest). */
const ALIGN_SHARE = 0.5;

async function alignFirst(req: DiffRequest, ctx: HandlerContext): Promise<Omit<AlignResult, 'matrices'>> {
  return alignHandler(
    {
      kind: 'align', a: req.a, b: req.b, method: req.method ?? 'weight', seed: req.seed ?? SEED.default, maxIter: req.maxIter ?? MAX_ITER.default,
      ...(req.spec !== undefined ? { spec: req.spec } : {}),
      ...(req.data !== undefined ? { data: req.data } : {}),
      ...(req.model !== undefined ? { model: req.model } : {}),
      ...(req.memoryBudget !== undefined ? { memoryBudget: req.memoryBudget } : {}),
      ...(req.allowNonFinite !== undefined ? { allowNonFinite: req.allowNonFinite } : {}),
    },
    { ...ctx, onProgress: (p) => ctx.onProgress({ ...p, fraction: p.fraction === undefined ? undefined : ALIGN_SHARE * p.fraction }) },
  );
}

export async function diffHandler(req: DiffRequest, ctx: HandlerContext): Promise<DiffResult> {
  const started = performance.now();
  const alignment = req.align ? await alignFirst(req, ctx) : undefined;
  throwIfCancelled(ctx.signal, 'diff');
  // π(B) must compute what B computes (as `align` checks it): else its figures would describe another network.
  if (alignment?.equivalence && !alignment.equivalence.ok) {
    throw new EngineError('InvalidRequest', `${base(req.b)}: alignment changed the network's function: ${alignment.equivalence.message ?? 'check the permutation spec'}; no aligned figures`, req.b);
  }
  const [a, b] = await openAll([req.a, req.b]);
  try {
    let permutationsOf: ((tensor: string, rank: number) => (Int32Array | null)[]) | undefined;
    if (alignment) {
      // The spec the alignment used (the same file, or the same inference from A's names and shapes).
      const { spec } = await specFor(req.spec, a, [b], req.model);
      const perms: Permutations = Object.fromEntries(Object.entries(alignment.perms).map(([k, p]) => [k, Int32Array.from(p)]));
      permutationsOf = (tensor, rank) => axisPermutations(spec, perms, tensor, rank);
    }
    const start = alignment ? ALIGN_SHARE : 0;
    const diff = await diffCheckpoints(a, b, {
      permutationsOf,
      beforeChunk: () => throwIfCancelled(ctx.signal, 'diff'),
      onProgress: (done, total, tensor) =>
        ctx.onProgress({
          stage: 'diff',
          fraction: start + (1 - start) * (total ? done / total : 1),
          message: `Comparing ${base(req.a)} with ${alignment ? 'π(B) and ' : ''}${base(req.b)}: ${formatBytes(done)} of ${formatBytes(total)} read (\`${tensor}\`)`,
        }),
    });
    const { aligned, ...naive } = diff;
    return {
      a: req.a,
      b: req.b,
      seconds: (performance.now() - started) / 1000,
      ...naive,
      ...(aligned && alignment
        ? {
            aligned: {
              ...aligned,
              method: alignment.method,
              ...(alignment.family !== undefined ? { family: alignment.family } : {}),
              permutations: alignment.groups.map((g) => ({ name: g.name, size: g.size, moved: g.moved })),
              ...(req.keepPerms ? { perms: alignment.perms } : {}),
            },
          }
        : {}),
    };
  } finally {
    await closeAll([a, b]);
  }
}
