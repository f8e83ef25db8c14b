/**
 * The two checkpoints of `align --symmetry orthogonal` as the alignment needs them, whatever
 * their kind: weights, folded form (transformerFold.ts), the equivalence check of a
 * reparameterisation, and the feature pass that activation matching runs on the request's data.
 * Language models (GPT-2, the Llama family, Mixtral) run their LM forward pass on token ids;
 * classifier transformers (ViT) their family's classifier forward pass on images. Which families
 * qualify is the families' own declaration (`orthogonalLayout`).
 */
import type { TensorMap } from '../../core/checkpoint';
import { locateCheckpoint } from '../../core/hf/layout';
import { lmCheckpointFamily } from '../../core/families/lmCheckpoint';
import { readModelConfig, type ModelConfig } from '../../core/families/modelConfig';
import { openCheckpoint } from '../../core/safetensors';
import { classifierTransformerLayout, foldNorms, SymmetryUnsupported, transformerLayout, type FoldedTransformer, type TransformerLayout } from '../../core/symmetry';
import { checkPermutedEquivalence } from '../families/equivalence';
import { buildModel, detectModelFamily, readTensors } from '../families/build';
import { classifierFeaturePass, lmFeaturePass, orthogonalMatchingOn, type OrthogonalMatchingResult } from '../compute/orthogonalMatching';
import { checkLmReparameterised } from '../compute/transformerEquivalence';
import { assertFeaturesFit } from '../compute/dataFit';
import { EngineError } from '../errors';
import type { HandlerContext } from '../handlerContext';
import { base } from '../loadTensors';
import { loadLmCheckpoint } from '../lm/checkpoint';
import { buildLm } from '../lm/model';
import { memoryBudgetOf, trainingData } from '../methods/common';
import type { AlignRequest, EquivalenceReport } from '../protocol';
import { tokenInput } from './evaluateLmPath';
import { lmSteRefine, orthogonalOrbit } from '../compute/lmSte';
import { lmSteOptions, logSteRun } from '../methods/lmSte';
import type { LmEvaluationInput } from '../lm/evaluate';

/** One checkpoint: its weights as read, folded, and how a reparameterisation of it is checked. */
export interface OrthogonalSide {
  /** The weights file (or shard index) whose layout an output follows. */
  readonly weights: string;
  /** config.json beside it (rewritten for an output whose head the fold untied). */
  readonly configPath?: string;
  readonly tensors: TensorMap;
  readonly folded: FoldedTransformer;
  /** Whether `transformed` (folded, or moved by the group) computes this checkpoint's function. */
  check(transformed: TensorMap, seed: number): EquivalenceReport;
}

export interface OrthogonalPair {
  readonly a: OrthogonalSide;
  readonly b: OrthogonalSide;
  /** The family id (the JSON's `family`). */
  readonly family: string;
  /** Activation matching of fold(B) to fold(A) on the request's data. */
  match(req: AlignRequest, ctx: HandlerContext): Promise<OrthogonalMatchingResult>;
  /**
   * Language models: activation matching, then the straight-through estimator (Algorithm 2) with
   * orthogonal weight matching as its projection; the best element visited and the steps taken.
   */
  readonly refine?: (req: AlignRequest, ctx: HandlerContext) => Promise<OrthogonalMatchingResult & { readonly steps: number }>;
}

function refuse(message: string, file?: string): never {
  throw new EngineError('InvalidRequest', message, file);
}

function foldOrRefuse(p: string, tensors: TensorMap, layout: () => TransformerLayout): FoldedTransformer {
  try {
    return foldNorms(tensors, layout());
  } catch (e) {
    // The message names the config.json or file it read; the refusal names the checkpoint once.
    if (e instanceof SymmetryUnsupported) refuse(`${base(p)}: ${e.message.replace(/^.*?config\.json: /, '').replace(`${base(p)}: `, '')}`, p);
    throw e;
  }
}

/** Both checkpoints, as language models when A is one (config.json beside it), else as classifiers. */
export async function loadOrthogonalPair(req: AlignRequest): Promise<OrthogonalPair> {
  return lmCheckpointFamily(req.a) ? lmPair(req) : classifierPair(req);
}

async function lmPair(req: AlignRequest): Promise<OrthogonalPair> {
  const load = async (p: string) => {
    if (!lmCheckpointFamily(p)) refuse(`${base(p)}: --symmetry orthogonal aligns two models of one kind; ${base(req.a)} is a language model and this is not one`, p);
    const lm = await loadLmCheckpoint(p);
    const folded = foldOrRefuse(p, lm.tensors, () => transformerLayout(lm.tensors, lm.config));
    const foldedConfig = { ...lm.config, tied: folded.layout.tied };
    const side: OrthogonalSide = {
      weights: lm.paths.weights,
      configPath: lm.paths.config,
      tensors: lm.tensors,
      folded,
      check: (t, seed) => checkLmReparameterised(lm.tensors, lm.config, t, foldedConfig, seed).report,
    };
    return { lm, side, foldedConfig };
  };
  const a = await load(req.a);
  const b = await load(req.b);
  return {
    a: a.side,
    b: b.side,
    family: a.lm.config.family,
    async match(r, ctx) {
      return activation(await tokens(r, ctx), ctx);
    },
    async refine(r, ctx) {
      // Algorithm 2 interpolates A' and B': both need the same head form.
      if (a.side.folded.untied !== b.side.folded.untied) refuse(`${base(r.b)}: the straight-through estimator interpolates A' and B', but folding untied the head of only ${a.side.folded.untied ? 'A' : 'B'} (one final norm gain is all ones)`, r.b);
      const input = await tokens(r, ctx);
      const start = await activation(input, ctx);
      const opts = lmSteOptions(r, a.foldedConfig, ctx);
      const run = await lmSteRefine(a.side.folded.tensors, a.foldedConfig, input, start, orthogonalOrbit(b.side.folded.layout, b.side.folded.tensors, opts), opts);
      logSteRun(run, ctx);
      return { ...run.best, steps: run.stepLoss.length };
    },
  };

  async function tokens(r: AlignRequest, ctx: HandlerContext): Promise<LmEvaluationInput> {
    if (!r.data) refuse('--symmetry orthogonal needs token data (--data): activation matching runs both language models on it');
    return (await tokenInput(r.data, a.lm.config, a.lm.paths.config, r.data.tokenizer ?? a.lm.paths.tokenizer, memoryBudgetOf(r), ctx.signal)).input;
  }

  async function activation(input: LmEvaluationInput, ctx: HandlerContext): Promise<OrthogonalMatchingResult> {
    const ma = buildLm(a.side.folded.tensors, a.foldedConfig);
    try {
      const mb = buildLm(b.side.folded.tensors, b.foldedConfig);
      try {
        return await orthogonalMatchingOn(b.side.folded.layout, lmFeaturePass(ma, mb, input), { signal: ctx.signal, onProgress: ctx.onProgress });
      } finally {
        mb.dispose();
      }
    } finally {
      ma.dispose();
    }
  }
}

async function classifierPair(req: AlignRequest): Promise<OrthogonalPair> {
  const read = async (p: string) => {
    const weights = locateCheckpoint(p).weights;
    const ck = await openCheckpoint(weights);
    let tensors: TensorMap;
    try {
      tensors = await readTensors(ck);
    } finally {
      await ck.close();
    }
    const config: ModelConfig = readModelConfig(p, req.model);
    return { p, weights, tensors, config, family: detectModelFamily(tensors, config) };
  };
  const fold = ({ p, weights, tensors, config, family }: Awaited<ReturnType<typeof read>>) => {
    const folded = foldOrRefuse(p, tensors, () => classifierTransformerLayout(tensors, family, config, base(p)));
    const side: OrthogonalSide = { weights, tensors, folded, check: (t, seed) => checkPermutedEquivalence(tensors, t, config, undefined, seed) };
    return { side, config, family };
  };
  const [ra, rb] = [await read(req.a), await read(req.b)];
  if (ra.family !== rb.family) refuse(`${base(req.b)}: --symmetry orthogonal aligns two models of one family; this is a ${rb.family} model, ${base(req.a)} a ${ra.family} model`, req.b);
  const a = fold(ra);
  const b = fold(rb);
  return {
    a: a.side,
    b: b.side,
    family: a.family,
    async match(r, ctx) {
      if (!r.data) refuse('--symmetry orthogonal needs images (--data): activation matching runs both models on them');
      const data = await trainingData(r);
      const ma = buildModel(a.side.folded.tensors, a.config);
      try {
        // Images of another shape: one line naming the data file.
        assertFeaturesFit(data.xShape.slice(1), ma.inputShape, data.source);
        const mb = buildModel(b.side.folded.tensors, b.config);
        try {
          return await orthogonalMatchingOn(b.side.folded.layout, classifierFeaturePass(b.side.folded.layout, ma, mb, data), { signal: ctx.signal, onProgress: ctx.onProgress });
        } finally {
          mb.dispose();
        }
      } finally {
        ma.dispose();
      }
    },
  };
}
