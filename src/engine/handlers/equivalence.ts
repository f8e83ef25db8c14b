/**
 * `equivalence` request: does `other` compute B's function? Both run on a few examples of the data
 * (else seeded random inputs) through the family's classifier forward pass and their outputs are
 * compared (compute/equivalence.ts, the check `align` makes on π(B)). `barrier --aligned` asks
 * it of a file when no spec says how it should be B permuted. Skipped, with the reason, when no
 * forward pass exists for the weights or the two models do not fit the memory budget.
 */
import type { DenseTensor } from '../../core/checkpoint';
import { loadDataset } from '../../core/data';
import { formatBytes } from '../../../shared/bytes';
import { readModelConfig } from '../compute/modelConfig';
import { ModelError } from '../compute/modelErrors';
import type { HandlerContext } from '../handlerContext';
import { checkPermutedEquivalence } from '../families/equivalence';
import { assertCompatible, closeAll, isFloatDtype, loadTensors, openAll } from '../loadTensors';
import { memoryBudgetOf } from '../methods/common';
import type { EquivalenceRequest, EquivalenceResult } from '../protocol';
import { checkLmReparameterised } from '../compute/transformerEquivalence';
import { loadLmCheckpoint } from '../lm/checkpoint';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';

/** Examples fed to both models (as align's check). */
const EXAMPLES = 64;

export async function equivalenceHandler(req: EquivalenceRequest, ctx: HandlerContext): Promise<EquivalenceResult> {
  // A language model's reparameterisation may untie its head (its own config.json); a classifier's (ViT) keeps B's names and shapes: the plain check.
  if (req.symmetry === 'orthogonal' && lmCheckpointFamily(req.b)) return reparameterisedEquivalence(req, ctx);
  const [b, other] = await openAll([req.b, req.other]);
  let tb: Map<string, DenseTensor>;
  let to: Map<string, DenseTensor>;
  try {
    assertCompatible(b, other);
    const names = b.tensors.filter((t) => isFloatDtype(t.dtype)).map((t) => t.name);
    // Both models as float32 and the backend's copy of each: 4 models.
    const bytes = 4 * names.reduce((s, n) => s + 4 * b.get(n)!.shape.reduce((p, d) => p * d, 1), 0);
    const budget = memoryBudgetOf(req);
    if (bytes > budget) return { skipped: `the two models and their forward passes need ${formatBytes(bytes)}, over the memory budget of ${formatBytes(budget)}` };
    ctx.onProgress({ stage: 'equivalence', message: 'Checking that the aligned checkpoint computes the same function as B' });
    const opts = { allowNonFinite: req.allowNonFinite, signal: ctx.signal };
    tb = await loadTensors(b, names, opts);
    to = await loadTensors(other, names, opts);
  } finally {
    await closeAll([b, other]);
  }
  try {
    const config = readModelConfig(req.b, req.model);
    const data = req.data ? await loadDataset({ ...req.data, limit: EXAMPLES }, req.data.split === 'train' ? 'train' : 'test', { budget: memoryBudgetOf(req) }) : undefined;
    return { equivalence: checkPermutedEquivalence(tb, to, config, data, req.seed ?? 0) };
  } catch (e) {
    if (e instanceof ModelError && e.kind !== 'ConfigInvalid') return { skipped: e.message };
    throw e;
  }
}

/** B against a reparameterisation of it (other weights, same function), each language model under its own config.json. */
async function reparameterisedEquivalence(req: EquivalenceRequest, ctx: HandlerContext): Promise<EquivalenceResult> {
  ctx.onProgress({ stage: 'equivalence', message: 'Checking that the reparameterised checkpoint computes the same function' });
  const b = await loadLmCheckpoint(req.b);
  const other = await loadLmCheckpoint(req.other);
  return { equivalence: checkLmReparameterised(b.tensors, b.config, other.tensors, other.config, req.seed ?? 0).report };
}
