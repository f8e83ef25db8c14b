/**
 * `align --symmetry orthogonal` (issue 21): aligns a GPT-2 or Llama-family B to A under the
 * generalized transformer group (src/core/symmetry) by weight matching (core/symmetry/weightMatching.ts,
 * no data) or by activation matching on token data (compute/orthogonalMatching.ts). The two differ
 * only in where the cross-correlations the maps are fitted to come from.
 *
 * Both models are reparameterised first: their norms are folded (unit gains; a tied head behind
 * a gain becomes an untied `lm_head.weight`), so A itself changes form. The output is
 * B' = g . fold(B) with B's names and shapes (plus `lm_head.weight` when untied), and A' = fold(A)
 * is written beside it (`referenceFolded`: `<stem>.a-folded.safetensors` beside a file output,
 * the folder `<out>.a-folded` beside a folder output): B' is aligned to A', not to A. Both are
 * checked against the originals through the family's forward pass (A' = A, B' = B on seeded
 * random tokens); a failed check writes nothing.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint, DenseTensor } from '../../core/checkpoint';
import { MAX_CONFIG_JSON_BYTES, readJsonObjectSync } from '../../core/files';
import { writeCheckpointOutput } from '../../core/hf/layout';
import { hfModelType, locateCheckpoint, writesFolder } from '../../core/hf/layout';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { encodeFromFloat32, openCheckpoint, provenanceMetadata, type TensorSource } from '../../core/safetensors';
import { applyTransformerGroup, foldedConfigJson, foldNorms, SymmetryUnsupported, transformerLayout, type FoldedTransformer } from '../../core/symmetry';
import { currentBackend } from '../backend';
import { orthogonalActivationMatching, type OrthogonalMatchingResult } from '../compute/orthogonalMatching';
import { checkLmReparameterised } from '../compute/transformerEquivalence';
import { lmSteRefine, orthogonalOrbit } from '../compute/lmSte';
import { lmSteOptions, logSteRun } from '../methods/lmSte';
import { orthogonalWeightMatching, type OrthogonalWeightMatchingResult } from '../../core/symmetry/weightMatching';
import { tfMatMul } from '../tfMatMul';
import { EngineError, throwIfCancelled } from '../errors';
import type { HandlerContext } from '../handlerContext';
import { base, isFloatDtype } from '../loadTensors';
import { loadLmCheckpoint, type LoadedLm } from '../lm/checkpoint';
import type { LmConfig } from '../lm/config';
import { buildLm } from '../lm/model';
import { memoryBudgetOf } from '../methods/common';
import { checkOutput, otherReads } from '../outputCheck';
import type { AlignRequest, AlignResult, EquivalenceReport } from '../protocol';
import { tokenInput } from './evaluateLmPath';
import { TOOL, VERSION } from '../version';
import { referenceFoldedPath } from '../../core/symmetry/referenceFolded';

/** One line refusing what the orthogonal symmetry does not handle (request, family). */
function refuse(message: string, file?: string): never {
  throw new EngineError('InvalidRequest', message, file);
}

/** The GPT-2 or Llama-family checkpoint at `p`, or a one-line refusal naming what it is. */
async function loadForOrthogonal(p: string): Promise<LoadedLm> {
  if (!lmCheckpointFamily(p)) refuse(`${base(p)}: --symmetry orthogonal handles GPT-2 and Llama-family language models (a Hugging Face checkpoint with config.json); this is ${hfModelType(p) !== undefined ? `a "${hfModelType(p)}" model` : 'not one'}`, p);
  return loadLmCheckpoint(p);
}

function layoutOrRefuse(lm: LoadedLm, p: string): FoldedTransformer {
  try {
    return foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
  } catch (e) {
    if (e instanceof SymmetryUnsupported) refuse(`${base(p)}: ${e.message.replace(/^.*?config\.json: /, '')}`, p);
    throw e;
  }
}

export async function alignOrthogonal(req: AlignRequest, ctx: HandlerContext): Promise<AlignResult> {
  const started = performance.now();
  if (req.method !== 'weight' && !req.data) refuse(`--symmetry orthogonal with --method ${req.method} needs token data (--data): ${req.method === 'ste' ? 'the straight-through estimator trains on it' : 'activation matching runs both language models on it'}`);
  if (req.spec !== undefined) refuse('--symmetry orthogonal takes its layout from the model family; --spec gives permutation groups and does not apply');
  const aPath = req.out !== undefined ? referenceFoldedPath(req.out, writesFolder(locateCheckpoint(req.b), req.out)) : undefined;
  if (req.out !== undefined) {
    await checkOutput(req.out, [req.a, req.b], req, req.b);
    await checkOutput(aPath!, [req.a, req.b], req, req.a);
  }
  ctx.onProgress({ stage: 'loading', message: `Reading ${base(req.a)} and ${base(req.b)}` });
  const a = await loadForOrthogonal(req.a);
  const b = await loadForOrthogonal(req.b);
  const foldedA = layoutOrRefuse(a, req.a);
  const foldedB = layoutOrRefuse(b, req.b);
  const configA = { ...a.config, tied: foldedA.layout.tied };
  const configB = { ...b.config, tied: foldedB.layout.tied };
  throwIfCancelled(ctx.signal, 'align');

  const { match, objectiveBefore, objectiveAfter, iterations } = await fitByMethod(req, a, foldedA, configA, foldedB, configB, ctx);
  const bPrime = applyTransformerGroup(foldedB.tensors, foldedB.layout, match.element);

  ctx.onProgress({ stage: 'equivalence', message: "Checking that A' computes A's function and B' computes B's" });
  const refCheck = checkLmReparameterised(a.tensors, a.config, foldedA.tensors, configA, req.seed).report;
  const outCheck = checkLmReparameterised(b.tensors, b.config, bPrime, configB, req.seed).report;
  for (const [what, r] of [["A'", refCheck], ["B'", outCheck]] as const) if (!r.ok) ctx.log(`equivalence check failed for ${what}: ${r.message ?? ''}`);

  // Nothing unequal is written: both checks must pass.
  const write = req.out !== undefined && refCheck.ok && outCheck.ok;
  if (write) {
    ctx.onProgress({ stage: 'writing', message: `Writing ${base(aPath!)} and ${base(req.out!)}` });
    // B': B's entries, the alignment's under `rebasin.align.*` (as align.ts's alignedMetadata); A': A's, marked folded.
    const own = provenanceMetadata({}, { tool: TOOL, version: VERSION, method: req.method, reference: req.a, seed: req.seed });
    const alignEntries = Object.fromEntries(Object.entries(own).map(([k, v]) => [k === 'rebasin.tool' ? k : k.replace(/^rebasin\./, 'rebasin.align.'), v]));
    await writeReparameterised(aPath!, req.a, a, foldedA, foldedA.tensors, { 'rebasin.tool': TOOL, 'rebasin.folded': 'norms', 'rebasin.foldedFor': req.out! }, req, ctx);
    try {
      await writeReparameterised(req.out!, req.b, b, foldedB, bPrime, { ...alignEntries, 'rebasin.align.symmetry': 'orthogonal', 'rebasin.align.referenceFolded': aPath! }, req, ctx);
    } catch (e) {
      await rm(aPath!, { recursive: true, force: true });
      throw e;
    }
  }
  const reference: EquivalenceReport = refCheck;
  return {
    method: req.method,
    symmetry: 'orthogonal',
    seconds: (performance.now() - started) / 1000,
    iterations,
    objectiveBefore,
    objectiveAfter,
    perms: Object.fromEntries([...match.element.mlp.map((p, l) => [`mlp.${l}`, [...p]]), ...match.element.heads.map((p, l) => [`heads.${l}`, [...p]])]),
    ...(write ? { out: req.out!, referenceFolded: aPath! } : {}),
    ...(req.out !== undefined ? { written: write } : {}),
    backend: currentBackend(),
    family: a.config.family,
    groups: [],
    equivalence: outCheck,
    orthogonal: { residual: match.residual, qk: match.qk, vo: match.vo, untiedHead: foldedB.untied || foldedA.untied, referenceEquivalence: reference },
  };
}

interface Fitted {
  readonly match: OrthogonalMatchingResult;
  readonly objectiveBefore: number;
  readonly objectiveAfter: number;
  readonly iterations: number;
}

/**
 * The group element by the request's method. Weight matching: the whole objective (every tensor
 * the group acts on) over its sweeps. Activation matching: the residual map's objective, one
 * pass. STE: activation matching, then Algorithm 2 with orthogonal weight matching as the
 * projection (compute/lmSte.ts); the residual map's objective, and its steps.
 */
async function fitByMethod(req: AlignRequest, a: LoadedLm, foldedA: FoldedTransformer, configA: LmConfig, foldedB: FoldedTransformer, configB: LmConfig, ctx: HandlerContext): Promise<Fitted> {
  if (req.method === 'weight') {
    const w = await weightMatchingOrRefuse(req, foldedA, foldedB, ctx);
    return { match: w, objectiveBefore: w.objectives[0], objectiveAfter: w.objectives[w.objectives.length - 1], iterations: w.objectives.length - 1 };
  }
  if (req.method === 'ste' && foldedA.untied !== foldedB.untied) {
    refuse(`${base(req.b)}: the straight-through estimator interpolates A' and B', but folding untied the head of only ${foldedA.untied ? 'A' : 'B'} (one final norm gain is all ones)`, req.b);
  }
  const { input } = await tokenInput(req.data!, a.config, a.paths.config, req.data!.tokenizer ?? a.paths.tokenizer, memoryBudgetOf(req), ctx.signal);
  const act = await fitMaps(foldedA, configA, foldedB, configB, input, ctx);
  if (req.method !== 'ste') return { match: act, objectiveBefore: act.residual.objectiveBefore, objectiveAfter: act.residual.objectiveAfter, iterations: 1 };
  const opts = lmSteOptions(req, configA, ctx);
  const run = await lmSteRefine(foldedA.tensors, configA, input, act, orthogonalOrbit(foldedB.layout, foldedB.tensors, opts), opts);
  logSteRun(run, ctx);
  return { match: run.best, objectiveBefore: run.best.residual.objectiveBefore, objectiveAfter: run.best.residual.objectiveAfter, iterations: run.stepLoss.length };
}

async function weightMatchingOrRefuse(req: AlignRequest, foldedA: FoldedTransformer, foldedB: FoldedTransformer, ctx: HandlerContext): Promise<OrthogonalWeightMatchingResult> {
  try {
    return await orthogonalWeightMatching(foldedB.layout, foldedA.tensors, foldedB.tensors, { maxIter: req.maxIter, matmul: tfMatMul, signal: ctx.signal, onProgress: ctx.onProgress });
  } catch (e) {
    if (e instanceof SymmetryUnsupported) refuse(`${base(req.b)}: ${e.message}`, req.b);
    throw e;
  }
}

async function fitMaps(
  foldedA: FoldedTransformer, configA: LmConfig, foldedB: FoldedTransformer, configB: LmConfig,
  input: Parameters<typeof orthogonalActivationMatching>[3], ctx: HandlerContext,
): Promise<OrthogonalMatchingResult> {
  const ma = buildLm(foldedA.tensors, configA);
  try {
    const mb = buildLm(foldedB.tensors, configB);
    try {
      return await orthogonalActivationMatching(foldedB.layout, ma, mb, input, { signal: ctx.signal, onProgress: ctx.onProgress });
    } finally {
      mb.dispose();
    }
  } finally {
    ma.dispose();
  }
}

/**
 * Writes `tensors` in the layout of `source` (its names, shapes and float dtypes; tensors the
 * forward pass does not read copied as stored; `lm_head.weight` added in the embedding's dtype
 * when the fold untied the head). A folder output gets config.json with `tie_word_embeddings`
 * false when untied.
 */
async function writeReparameterised(
  out: string, sourcePath: string, lm: LoadedLm, folded: FoldedTransformer, tensors: ReadonlyMap<string, DenseTensor>,
  metadata: Record<string, string>, req: AlignRequest, ctx: HandlerContext,
): Promise<void> {
  const ck: Checkpoint = await openCheckpoint(lm.paths.weights);
  try {
    const source = (name: string, dtype: string, shape: readonly number[], byteLength: number, raw: () => Promise<Uint8Array>): TensorSource => ({
      name, dtype, shape, byteLength, read: async () => {
        const t = tensors.get(name);
        return t && isFloatDtype(dtype) ? encodeFromFloat32(dtype, t.data) : raw();
      },
    });
    const sources = ck.tensors.map((t) => source(t.name, t.dtype, t.shape, t.byteLength, () => ck.readRaw(t.name)));
    for (const name of folded.added) {
      const like = ck.tensors.find((t) => t.name === folded.layout.tokenEmbedding)!;
      const t = tensors.get(name)!;
      const bytes = encodeFromFloat32(like.dtype, t.data);
      sources.push(source(name, like.dtype, t.shape, bytes.byteLength, async () => bytes));
    }
    const raw = readJsonObjectSync(lm.paths.config, MAX_CONFIG_JSON_BYTES, 'config.json');
    await writeCheckpointOutput(out, sourcePath, sources, {
      metadata: { ...ck.metadata, ...metadata },
      inputs: [req.a, req.b],
      alsoReads: otherReads(req, req.a),
      signal: ctx.signal,
      ...(folded.untied ? { files: { 'config.json': `${JSON.stringify(foldedConfigJson(raw, folded), null, 2)}\n` } } : {}),
    });
  } finally {
    await ck.close();
  }
  if (folded.untied && !writesFolder(locateCheckpoint(sourcePath), out)) {
    ctx.log(`${path.basename(out)}: its head is now untied \`lm_head.weight\`; a config.json for it must say "tie_word_embeddings": false (write to a folder to get one)`);
  }
}
