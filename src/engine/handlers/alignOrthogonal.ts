/**
 * `align --symmetry orthogonal` (issue 21): aligns a pre-norm transformer B (GPT-2, the Llama
 * family, Mixtral; ViT) to A under the generalized transformer group (src/core/symmetry) by weight
 * matching (core/symmetry/weightMatching.ts, no data), by activation matching on the request's data
 * (token ids; images for a ViT; orthogonalPair.ts), or by the straight-through estimator on top of
 * activation matching (language models). They differ only in where the maps' cross-correlations
 * come from.
 *
 * Both models are reparameterised first: their norms are folded (unit gains; a tied head behind
 * a gain becomes an untied `lm_head.weight`), so A itself changes form. The output is
 * B' = g . fold(B) with B's names and shapes (plus `lm_head.weight` when untied), and A' = fold(A)
 * is written beside it (`referenceFolded`: `<stem>.a-folded.safetensors` beside a file output,
 * the folder `<out>.a-folded` beside a folder output): B' is aligned to A', not to A. Both are
 * checked against the originals through the family's forward pass (A' = A, B' = B on seeded
 * random tokens or images); a failed check writes nothing.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint, DenseTensor } from '../../core/checkpoint';
import { MAX_CONFIG_JSON_BYTES, readJsonObjectSync } from '../../core/files';
import { locateCheckpoint, writeCheckpointOutput, writesFolder } from '../../core/hf/layout';
import { unstackSources } from '../../core/moe/expertStack';
import { encodeFromFloat32, openCheckpoint, provenanceMetadata, type TensorSource } from '../../core/safetensors';
import { applyTransformerGroup, foldedConfigJson, withPictures } from '../../core/symmetry';
import { referenceFoldedPath } from '../../core/symmetry/referenceFolded';
import { stackExperts } from '../../core/moe/expertStack';
import { currentBackend } from '../backend';
import type { OrthogonalMatchingResult } from '../compute/orthogonalMatching';
import { orthogonalWeightMatching, type OrthogonalWeightMatchingResult } from '../../core/symmetry/weightMatching';
import { SymmetryUnsupported } from '../../core/symmetry';
import { tfMatMul } from '../tfMatMul';
import { EngineError, throwIfCancelled } from '../errors';
import type { HandlerContext } from '../handlerContext';
import { base, isFloatDtype } from '../loadTensors';
import { checkOutput, otherReads } from '../outputCheck';
import type { AlignRequest, AlignResult, EquivalenceReport } from '../protocol';
import { TOOL, VERSION } from '../version';
import { loadOrthogonalPair, type OrthogonalPair, type OrthogonalSide } from './orthogonalPair';

/** One line refusing what the orthogonal symmetry does not handle (request, family). */
function refuse(message: string, file?: string): never {
  throw new EngineError('InvalidRequest', message, file);
}

export async function alignOrthogonal(req: AlignRequest, ctx: HandlerContext): Promise<AlignResult> {
  const started = performance.now();
  if (req.method !== 'weight' && !req.data) refuse(`--symmetry orthogonal with --method ${req.method} needs data (--data: token ids or text for a language model, images for a ViT): ${req.method === 'ste' ? 'the straight-through estimator trains on it' : 'activation matching runs both models on it'}`);
  if (req.spec !== undefined) refuse('--symmetry orthogonal takes its layout from the model family; --spec gives permutation groups and does not apply');
  const aPath = req.out !== undefined ? referenceFoldedPath(req.out, writesFolder(locateCheckpoint(req.b), req.out)) : undefined;
  if (req.out !== undefined) {
    await checkOutput(req.out, [req.a, req.b], req, req.b);
    await checkOutput(aPath!, [req.a, req.b], req, req.a);
  }
  ctx.onProgress({ stage: 'loading', message: `Reading ${base(req.a)} and ${base(req.b)}` });
  const pair = await loadOrthogonalPair(req);
  const { a, b } = pair;
  throwIfCancelled(ctx.signal, 'align');

  const { match, objectiveBefore, objectiveAfter, iterations } = await fitByMethod(req, pair, ctx);
  const bPrime = applyTransformerGroup(b.folded.tensors, b.folded.layout, match.element);

  ctx.onProgress({ stage: 'equivalence', message: "Checking that A' computes A's function and B' computes B's" });
  const refCheck = a.check(a.folded.tensors, req.seed);
  const outCheck = b.check(bPrime, req.seed);
  for (const [what, r] of [["A'", refCheck], ["B'", outCheck]] as const) if (!r.ok) ctx.log(`equivalence check failed for ${what}: ${r.message ?? ''}`);

  // Nothing unequal is written: both checks must pass.
  const write = req.out !== undefined && refCheck.ok && outCheck.ok;
  if (write) {
    ctx.onProgress({ stage: 'writing', message: `Writing ${base(aPath!)} and ${base(req.out!)}` });
    // B': B's entries, the alignment's under `rebasin.align.*` (as align.ts's alignedMetadata); A': A's, marked folded.
    const own = provenanceMetadata({}, { tool: TOOL, version: VERSION, method: req.method, reference: req.a, seed: req.seed });
    const alignEntries = Object.fromEntries(Object.entries(own).map(([k, v]) => [k === 'rebasin.tool' ? k : k.replace(/^rebasin\./, 'rebasin.align.'), v]));
    await writeReparameterised(aPath!, req.a, a, a.folded.tensors, { 'rebasin.tool': TOOL, 'rebasin.folded': 'norms', 'rebasin.foldedFor': req.out! }, req, ctx);
    try {
      await writeReparameterised(req.out!, req.b, b, bPrime, { ...alignEntries, 'rebasin.align.symmetry': 'orthogonal', 'rebasin.align.referenceFolded': aPath! }, req, ctx);
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
    family: pair.family,
    groups: [],
    equivalence: outCheck,
    // The panel's pictures of |R| (bounded in size) only when asked, as the permutation heatmaps' matrices.
    orthogonal: { ...(req.includeMatrices ? withPictures(match, match.element) : { residual: match.residual, qk: match.qk, vo: match.vo }), untiedHead: b.folded.untied || a.folded.untied, referenceEquivalence: reference },
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
 * projection (compute/lmSte.ts, language models only); the residual map's objective, and its steps.
 */
async function fitByMethod(req: AlignRequest, pair: OrthogonalPair, ctx: HandlerContext): Promise<Fitted> {
  if (req.method === 'weight') {
    const w = await weightMatchingOrRefuse(req, pair, ctx);
    return { match: w, objectiveBefore: w.objectives[0], objectiveAfter: w.objectives[w.objectives.length - 1], iterations: w.objectives.length - 1 };
  }
  if (req.method === 'ste') {
    if (!pair.refine) refuse(`${base(req.b)}: --method ste with --symmetry orthogonal trains language models on token data; this is a ${pair.family} model (use --method activation or weight)`, req.b);
    const run = await pair.refine(req, ctx);
    return { match: run, objectiveBefore: run.residual.objectiveBefore, objectiveAfter: run.residual.objectiveAfter, iterations: run.steps };
  }
  const act = await pair.match(req, ctx);
  return { match: act, objectiveBefore: act.residual.objectiveBefore, objectiveAfter: act.residual.objectiveAfter, iterations: 1 };
}

async function weightMatchingOrRefuse(req: AlignRequest, pair: OrthogonalPair, ctx: HandlerContext): Promise<OrthogonalWeightMatchingResult> {
  try {
    return await orthogonalWeightMatching(pair.b.folded.layout, pair.a.folded.tensors, pair.b.folded.tensors, { maxIter: req.maxIter, matmul: tfMatMul, signal: ctx.signal, onProgress: ctx.onProgress });
  } catch (e) {
    if (e instanceof SymmetryUnsupported) refuse(`${base(req.b)}: ${e.message}`, req.b);
    throw e;
  }
}

/**
 * Writes `tensors` in the layout of `source` (its names, shapes and float dtypes; tensors the
 * forward pass does not read copied as stored; `lm_head.weight` added in the embedding's dtype
 * when the fold untied the head). A folder output gets config.json with `tie_word_embeddings`
 * false when untied.
 */
async function writeReparameterised(
  out: string, sourcePath: string, side: OrthogonalSide, tensors: ReadonlyMap<string, DenseTensor>,
  metadata: Record<string, string>, req: AlignRequest, ctx: HandlerContext,
): Promise<void> {
  const { folded } = side;
  // Experts as the tensors hold them (stacked, core/moe/expertStack.ts), written back under their own names.
  const ck: Checkpoint = stackExperts(await openCheckpoint(side.weights));
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
    const raw = folded.untied && side.configPath ? readJsonObjectSync(side.configPath, MAX_CONFIG_JSON_BYTES, 'config.json') : undefined;
    await writeCheckpointOutput(out, sourcePath, unstackSources(sources, ck), {
      metadata: { ...ck.metadata, ...metadata },
      inputs: [req.a, req.b],
      alsoReads: otherReads(req, req.a),
      signal: ctx.signal,
      ...(raw ? { files: { 'config.json': `${JSON.stringify(foldedConfigJson(raw, folded), null, 2)}\n` } } : {}),
    });
  } finally {
    await ck.close();
  }
  if (folded.untied && !writesFolder(locateCheckpoint(sourcePath), out)) {
    ctx.log(`${path.basename(out)}: its head is now untied \`lm_head.weight\`; a config.json for it must say "tie_word_embeddings": false (write to a folder to get one)`);
  }
}
