/**
 * `evaluatePath` for language models (Hugging Face checkpoints on token data): LM loss, accuracy
 * and perplexity of (1 - lambda) A + lambda pi(B) at this chunk's lambdas. The model comes from
 * A's config.json (B, or an aligned file, only has to hold the same tensors); the token data is
 * read and checked once per worker and reused by the barrier's later chunks (a small cache keyed
 * by the files' identity and the data options).
 */
import { createHash } from 'node:crypto';
import type { DenseTensor } from '../../core/checkpoint';
import { loadTokenData, loadTokenizer } from '../../core/data';
import { applyPermutations } from '../../core/matching/permute';
import type { Permutations } from '../../core/checkpoint';
import { EngineError, throwIfCancelled } from '../errors';
import { closeAll, openAll, specFor } from '../loadTensors';
import { defaultMemoryBudget } from '../../core/memoryBudget';
import { fileKey } from '../compute/pathCache';
import { evaluateLmWeights, prepareLmEvaluation, type LmEvaluationInput } from '../lm/evaluate';
import { interpolate } from '../../core/matching/merge';
import { evaluateRepairedLm, lmUnitStats, repairSequences, type LmUnitStats } from '../lm/repair';
import { lmWeightsPath, locateLmCheckpoint, readLmWeights } from '../lm/checkpoint';
import { defaultsNotice, readLmConfig, type LmConfig } from '../lm/config';
import { buildLm } from '../lm/model';
import { lmBytesPerSequence, lmModelBytes, planLmBatches } from '../lm/memoryPlan';
import type { DataOptions, EvaluatePathRequest, EvaluatePathResult, LmEvaluationInfo } from '../protocol';
import type { HandlerContext } from '../handlerContext';
import { threadTokenizer } from '../tokenizeThread';

/** How long an unused token input stays cached (a barrier's chunks follow each other within this). */
const TOKENS_IDLE_MS = 20_000;

interface CachedTokens {
  readonly key: string;
  readonly input: LmEvaluationInput;
  readonly description: string;
}

let cached: CachedTokens | undefined;
let timer: NodeJS.Timeout | undefined;

function keep(entry: CachedTokens): void {
  cached = entry;
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => (cached = undefined), TOKENS_IDLE_MS);
  timer.unref();
}

/** Token data ready for `config`'s objective: read (and checked against the model) once per data/config. */
export async function tokenInput(data: DataOptions, config: LmConfig, configPath: string, tokenizer: string | undefined, budget?: number, signal?: AbortSignal): Promise<CachedTokens> {
  const key = JSON.stringify([fileKey(data.path), fileKey(configPath), tokenizer ? fileKey(tokenizer) : null, data.seqLen, data.limit, data.maskSeed, data.maskId]);
  if (cached?.key === key) {
    keep(cached);
    return cached;
  }
  // Raw text is tokenized in a thread of its own, under a time budget (tokenizeThread.ts).
  const tokenizeText = threadTokenizer(signal);
  const tokens = await loadTokenData(
    { path: data.path, ...(tokenizer ? { tokenizer } : {}), ...(data.seqLen !== undefined ? { seqLen: data.seqLen } : {}), ...(data.limit !== undefined ? { limit: data.limit } : {}), ...(tokenizeText ? { tokenizeText } : {}) },
    { vocab: config.vocab, maxPositions: config.maxPositions, source: configPath },
    budget,
  );
  // Token arrays carry no tokenizer: a masked LM still takes its mask and special ids from the checkpoint's.
  const withTokenizer = config.objective === 'masked' && !tokens.tokenizer && tokenizer ? { ...tokens, tokenizer: await loadTokenizer(tokenizer) } : tokens;
  const input = prepareLmEvaluation(config, withTokenizer, { ...(data.maskSeed !== undefined ? { seed: data.maskSeed } : {}), ...(data.maskId !== undefined ? { maskId: data.maskId } : {}) });
  const entry = { key, input, description: tokens.description };
  keep(entry);
  return entry;
}

/** Endpoint REPAIR statistics kept between a barrier's chunks: A's, B's and pi(B)'s, by file, permutations, data and sample. */
const REPAIR_STATS_KEPT = 3;
const repairStatsCache: { key: string; stats: LmUnitStats }[] = [];
let repairStatsTimer: NodeJS.Timeout | undefined;

async function repairStats(keyParts: readonly unknown[], measure: () => Promise<LmUnitStats>): Promise<LmUnitStats> {
  const key = JSON.stringify(keyParts);
  if (repairStatsTimer) clearTimeout(repairStatsTimer);
  repairStatsTimer = setTimeout(() => (repairStatsCache.length = 0), TOKENS_IDLE_MS);
  repairStatsTimer.unref();
  const hit = repairStatsCache.find((e) => e.key === key);
  if (hit) return hit.stats;
  const stats = await measure();
  repairStatsCache.unshift({ key, stats });
  repairStatsCache.length = Math.min(repairStatsCache.length, REPAIR_STATS_KEPT);
  return stats;
}

/** The permutations of a request, as a short key (a digest: a large model's are long). */
function permsKey(perms: EvaluatePathRequest['perms']): string | null {
  if (!perms || Object.keys(perms).length === 0) return null;
  return createHash('sha256').update(JSON.stringify(Object.entries(perms).sort(([x], [y]) => (x < y ? -1 : 1)))).digest('hex');
}

/** B's weights with the request's permutations applied (through the spec of A's weights file). */
async function permutedB(req: EvaluatePathRequest, aWeights: string, bWeights: string, b: Map<string, DenseTensor>): Promise<Map<string, DenseTensor>> {
  if (!req.perms || Object.keys(req.perms).length === 0) return b;
  const [ca, cb] = await openAll([aWeights, bWeights]);
  try {
    const { spec } = await specFor(req.spec, ca, [cb]);
    const perms: Record<string, Int32Array> = {};
    for (const [k, v] of Object.entries(req.perms)) {
      if (spec.perms[k] === undefined) throw new EngineError('InvalidRequest', `permutation \`${k}\` is not in the spec of ${ca.path}`);
      perms[k] = Int32Array.from(v);
    }
    return applyPermutations(spec, perms as Permutations, b);
  } finally {
    await closeAll([ca, cb]);
  }
}

/**
 * The bytes of `budget` left for activations: the weights are A, B and pi(B) in JS plus one
 * interpolated model (in JS and uploaded); the rest goes to activations (lm/memoryPlan.ts,
 * which refuses a sequence over it), at least a quarter of the budget. merge --repair sizes its
 * REPAIR sample with it too.
 */
export function lmActivationBudget(a: ReadonlyMap<string, DenseTensor>, config: LmConfig, budget: number): number {
  const weightBytes = [...a.values()].reduce((s, t) => s + t.data.byteLength, 0) * 4 + lmModelBytes(config);
  return Math.max(budget - weightBytes, budget / 4);
}

export async function evaluateLmPathHandler(req: EvaluatePathRequest, ctx: HandlerContext): Promise<EvaluatePathResult> {
  ctx.onProgress({ stage: 'loading', fraction: 0, message: 'Loading the language models and the token data' });
  const paths = locateLmCheckpoint(req.a);
  const config = await readLmConfig(paths.config);
  const bWeights = lmWeightsPath(req.b);
  const tokens = await tokenInput(req.data, config, paths.config, req.data.tokenizer ?? paths.tokenizer, req.memoryBudget ?? defaultMemoryBudget(), ctx.signal);
  throwIfCancelled(ctx.signal, 'evaluatePath');
  const a = await readLmWeights(paths.weights);
  const b = await permutedB(req, paths.weights, bWeights, await readLmWeights(bWeights));
  throwIfCancelled(ctx.signal, 'evaluatePath');
  const { input } = tokens;
  // Builds A once first: a checkpoint that does not fit its config fails here, naming the file.
  const probe = buildLm(a, config, paths.weights);
  const model = probe.description;
  probe.dispose();
  const budgetBytes = lmActivationBudget(a, config, req.memoryBudget ?? defaultMemoryBudget());
  const batches = planLmBatches(config, input.t, budgetBytes);
  const loss: number[] = [];
  const acc: number[] = [];
  const perplexity: number[] = [];
  // REPAIR (the family's sites, lm/repair.ts): endpoint statistics on the first sequences of the evaluated tokens,
  // measured once per worker (the barrier's later chunks reuse them); then one pass per λ.
  const sequences = req.repair ? repairSequences(config, input, budgetBytes) : 0;
  const stats = (weights: Map<string, DenseTensor>, file: string, perms?: EvaluatePathRequest['perms']): Promise<LmUnitStats> =>
    repairStats([fileKey(file), permsKey(perms), tokens.key, sequences], () => lmUnitStats(weights, config, input, sequences));
  const repair = req.repair ? { a: await stats(a, paths.weights), b: await stats(b, bWeights, req.perms) } : undefined;
  for (const [i, lambda] of req.lambdas.entries()) {
    throwIfCancelled(ctx.signal, 'evaluatePath');
    const theta = interpolate(a, b, lambda);
    const opts = { budgetBytes, signal: ctx.signal };
    const m = repair ? await evaluateRepairedLm(theta, lambda, repair.a, repair.b, config, input, sequences, opts) : await evaluateLmWeights(theta, config, input, opts);
    loss.push(m.loss);
    acc.push(m.accuracy);
    perplexity.push(m.perplexity);
    ctx.onProgress({
      stage: 'evaluating',
      fraction: (i + 1) / req.lambdas.length,
      message: `λ = ${lambda.toFixed(3)}: loss ${m.loss.toFixed(4)}, accuracy ${m.accuracy.toFixed(4)}, perplexity ${m.perplexity.toFixed(2)}`,
      point: { lambda, loss: m.loss, acc: m.accuracy, perplexity: m.perplexity },
    });
  }
  const notice = defaultsNotice(config);
  const lm: LmEvaluationInfo = {
    objective: input.objective, sequences: input.n, seqLen: input.t, positions: input.rows.length, model, data: tokens.description,
    ...(notice ? { configDefaults: [notice] } : {}),
  };
  return {
    lambdas: [...req.lambdas],
    loss,
    acc,
    perplexity,
    plan: {
      batchSize: batches.sequences,
      activationBytesPerExample: lmBytesPerSequence(config, input.t),
      ...(repair ? { repair: { split: 'test' as const, examples: sequences } } : {}),
    },
    lm,
  };
}
