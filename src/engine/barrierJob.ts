/**
 * The barrier job (paper definition 2.2): loss and accuracy of (1−λ)·A + λ·π(B) on a λ grid, for
 * the naive path (π = identity) and the aligned one, and the barrier of each. The engine plans
 * it here and runs it over a set of workers (the client's pool, or this one worker when a
 * `barrier` request is sent straight to a worker):
 * - the aligned path's far end is the alignment the request names: its permutations, an aligned
 *   checkpoint evaluated as is, or an alignment made here with the request's method, in slot 0
 *   while the other workers start on the naive path (it needs no permutation);
 * - every worker takes `evaluatePath` chunks of the λs left (guided self-scheduling: chunks
 *   shrink so the workers finish together), each with its share of the memory budget, staying on
 *   the split it has cached (pathCache);
 * - each point is reported as soon as a worker has it (`Progress.point`).
 */
import type { CurvePoint, Progress } from '../core/checkpoint';
import { barrierFromCurve, coarseToFine, lambdaGrid } from '../core/barrier';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openCheckpoint } from '../core/safetensors';
import { defaultMemoryBudget } from '../core/memoryBudget';
import { DEFAULT_METHOD, METHOD_IDS, methodOptionsOf } from '../core/methods';
import { EngineError } from './errors';
import type {
  AlignedSource,
  AlignMethod,
  AlignRequest,
  AlignResult,
  BackendName,
  BarrierCurve,
  BarrierRequest,
  BarrierResult,
  EngineRequest,
  EvaluatePathRequest,
  EquivalenceResult,
  EvaluationPlan,
  LmEvaluationInfo,
  MethodOptionFields,
  PathMetrics,
  ResultOf,
} from './protocol';
import { throttleProgress } from './rpc';
import { lmCheckpointFamily } from '../core/families/lmCheckpoint';
import { lmWeightsPath } from './lm/checkpoint';
import { checkAlignedCheckpoint } from './alignedCheck';
import { referenceFoldedIn } from '../core/symmetry/referenceFolded';

/** What the job needs of a worker pool. */
export interface JobWorkers {
  readonly size: number;
  run<K extends EngineRequest['kind']>(
    request: Extract<EngineRequest, { kind: K }>,
    opts: { readonly signal?: AbortSignal; readonly onProgress?: (p: Progress) => void },
    slot: number,
  ): Promise<ResultOf[K]>;
  /** Starts the first `count` workers now (they will all get chunks). */
  warmUp(count: number): void;
  backend(): Promise<BackendName>;
}

export interface JobOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Progress) => void;
}

/** λs per evaluatePath request at most (small enough for both curves to fill in together). */
const MAX_CHUNK = 8;

/** The far end of the aligned path, and how it is obtained. */
type AlignedPlan =
  | { readonly source: 'none' }
  | { readonly source: 'alignment'; readonly request: AlignRequest }
  | { readonly source: 'permutations'; readonly perms: Readonly<Record<string, readonly number[]>> }
  | { readonly source: 'checkpoint'; readonly file: string };

function alignedPlan(req: BarrierRequest, lm: boolean, scratch: () => string): AlignedPlan {
  if (req.alignedCheckpoint !== undefined) return { source: 'checkpoint', file: req.alignedCheckpoint };
  if (req.perms !== undefined) return { source: 'permutations', perms: req.perms };
  if (!req.align) return { source: 'none' };
  const method = req.method ?? DEFAULT_METHOD;
  return {
    source: 'alignment',
    // The same request `rebasin align` sends with these flags, so the curve belongs to the file
    // that command writes; the data also lets the equivalence check run on real examples.
    request: {
      // A Hugging Face folder is aligned through its weights file (config.json stays beside it).
      kind: 'align', a: lm ? lmWeightsPath(req.a) : req.a, b: lm ? lmWeightsPath(req.b) : req.b, spec: req.spec, model: req.model, method, seed: req.seed, maxIter: req.maxIter,
      allowNonFinite: req.allowNonFinite, data: req.data,
      ...methodOptionsOf<MethodOptionFields>(method, req),
      // Orthogonal: B' and A' are files the path workers read (a folder like B's, removed after the curve).
      ...(req.symmetry === 'orthogonal' ? { symmetry: 'orthogonal' as const, a: req.a, b: req.b, out: path.join(scratch(), 'aligned') } : {}),
    },
  };
}

/**
 * What an aligned checkpoint records in its provenance metadata: the method (`rebasin.align.method`,
 * else "unknown") and, for `align --symmetry orthogonal`, the folded reference A' written beside it
 * (`rebasin.align.referenceFolded`).
 */
async function provenanceOfCheckpoint(file: string): Promise<{ method: AlignMethod | 'unknown'; referenceFolded?: string }> {
  const ck = await openCheckpoint(lmWeightsPath(file));
  try {
    // `rebasin.align.method` since alignments keep B's own keys; `rebasin.method` in files of earlier versions.
    const m = ck.metadata['rebasin.align.method'] ?? ck.metadata['rebasin.method'];
    const method = METHOD_IDS.find((x) => x === m) ?? 'unknown';
    const folded = referenceFoldedIn(ck.metadata);
    return { method, ...(folded ? { referenceFolded: folded } : {}) };
  } finally {
    await ck.close();
  }
}

/**
 * `barrier --aligned` on an output of `align --symmetry orthogonal`: B' must compute B's function
 * and A' (recorded in B''s metadata) A's; each is checked under its own config.json.
 */
async function checkReparameterised(req: BarrierRequest, file: string, referenceFolded: string, workers: JobWorkers, signal: AbortSignal): Promise<void> {
  if (!existsSync(referenceFolded)) throw new EngineError('InvalidRequest', `${file}: its folded reference A' ${referenceFolded} (written beside it by align --symmetry orthogonal) is missing`, file);
  for (const [original, other] of [[req.b, file], [req.a, referenceFolded]] as const) {
    const r = await workers.run({ kind: 'equivalence', b: original, other, symmetry: 'orthogonal', seed: req.seed }, { signal }, 0);
    if (r.equivalence && !r.equivalence.ok) {
      throw new EngineError('InvalidRequest', `${other}: does not compute the function of ${original} (${r.equivalence.message ?? `max |logit difference| ${r.equivalence.maxAbsDiff}`}); --aligned takes the folder \`rebasin align --symmetry orthogonal\` wrote for these A and B`, other);
    }
  }
}

/** One point's values (perplexity: language models). */
interface Metrics {
  readonly loss: number;
  readonly acc: number;
  readonly perplexity?: number;
}

/** The λs of one path on one split still to evaluate (indices into the grid). */
interface Queue {
  readonly split: 'test' | 'train';
  readonly path: 'naive' | 'aligned';
  readonly todo: number[];
  /** The aligned path opens when the alignment is done. */
  open: boolean;
}

export async function runBarrierJob(req: BarrierRequest, workers: JobWorkers, opts: JobOptions = {}): Promise<BarrierResult> {
  const started = performance.now();
  // One controller for the whole plan: the caller's cancel, or the first failure, stops every part.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  if (opts.signal?.aborted) throw new EngineError('Cancelled', 'barrier cancelled');
  opts.signal?.addEventListener('abort', onAbort);
  const progress = throttleProgress((p) => opts.onProgress?.(p));
  let scratchDir: string | undefined;
  try {
    // Every worker will get λ chunks: start them while the alignment runs.
    workers.warmUp(workers.size);
    // Language models (Hugging Face checkpoints of an LM family) are evaluated on token data, which has no splits.
    const lm = lmCheckpointFamily(req.a) !== undefined;
    if (lm && req.data.split === 'both') throw new EngineError('InvalidRequest', `${req.data.path}: token data has no train/test splits: evaluate it once (no --split both)`);
    const splits: ('test' | 'train')[] = req.data.split === 'both' ? ['test', 'train'] : [req.data.split ?? 'test'];
    const lambdas = lambdaGrid(req.steps);
    const plan = alignedPlan(req, lm, () => (scratchDir ??= mkdtempSync(path.join(tmpdir(), 'rebasin-orthogonal-'))));
    // Before any evaluation: a file that is not B permuted would give a barrier of another network.
    const provenance = plan.source === 'checkpoint' ? await provenanceOfCheckpoint(plan.file) : undefined;
    let referenceFolded = provenance?.referenceFolded;
    if (plan.source === 'checkpoint' && referenceFolded !== undefined) {
      await checkReparameterised(req, plan.file, referenceFolded, workers, controller.signal);
    } else if (plan.source === 'checkpoint') {
      const file = plan.file;
      // Without a spec, FILE must compute B's function: forward passes, in worker 0.
      const equivalence = (): Promise<EquivalenceResult> => workers.run(
        { kind: 'equivalence', b: req.b, other: file, data: req.data, model: req.model, seed: req.seed, allowNonFinite: req.allowNonFinite, memoryBudget: req.memoryBudget },
        { signal: controller.signal },
        0,
      );
      await checkAlignedCheckpoint(file, req.b, { allowNonFinite: req.allowNonFinite ?? false, spec: req.spec, model: req.model, signal: controller.signal, equivalence });
    }
    const alignedFrom: AlignedSource | undefined =
      plan.source === 'none'
        ? undefined
        : plan.source === 'checkpoint'
          ? { method: provenance!.method, source: 'checkpoint', checkpoint: plan.file, ...(referenceFolded !== undefined ? { symmetry: 'orthogonal' as const, referenceFolded } : {}) }
          : { method: plan.source === 'alignment' ? plan.request.method : (req.method ?? DEFAULT_METHOD), source: plan.source };
    const hasAligned = plan.source !== 'none';
    // Each worker's share of the budget (they evaluate side by side).
    const share = Math.max(1, Math.floor((req.memoryBudget ?? defaultMemoryBudget()) / workers.size));

    // theta_aligned(0) = 1*A + 0*pi(B) = A = theta_naive(0) exactly (finite weights: the align
    // refuses non-finite ones unless allowed), so the aligned path reuses the naive λ = 0.
    const shareStart = hasAligned && !req.allowNonFinite && lambdas[0] === 0;
    const queues: Queue[] = [];
    // Coarse to fine, so a live plot spans the whole path from its first points.
    const order = coarseToFine(lambdas.length);
    for (const split of splits) {
      queues.push({ split, path: 'naive', todo: [...order], open: true });
      if (hasAligned) queues.push({ split, path: 'aligned', todo: order.filter((i) => !(shareStart && i === 0)), open: plan.source !== 'alignment' });
    }
    // theta_aligned(1) = pi(B) computes B's function = theta_naive(1): once the alignment's own
    // equivalence check has confirmed it on the data, the aligned path reuses the naive λ = 1
    // (one forward pass over the data fewer; the values differ only by float rounding).
    const last = lambdas.length - 1;
    let shareEnd = false;
    const totalPoints = splits.length * lambdas.length * (hasAligned ? 2 : 1);
    let toEvaluate = queues.reduce((s, q) => s + q.todo.length, 0);
    const values = new Map<string, Metrics>();
    const at = (split: string, p: string, i: number): string => `${split}/${p}/${i}`;

    // Progress: the align counts as this many λ evaluations (about its cost on MNIST MLPs).
    const alignWeight = plan.source === 'alignment' ? 3 : 0;
    let alignFraction = 0;
    let alignMessage: string | undefined;
    let alignDoneFlag = plan.source !== 'alignment';
    let pointsDone = 0;
    const inFlight = new Map<number, number>();
    let shown = 0;
    const report = (point?: CurvePoint): void => {
      const partial = [...inFlight.values()].reduce((s, v) => s + v, 0);
      shown = Math.max(shown, Math.min(1, (alignWeight * alignFraction + pointsDone + partial) / (alignWeight + toEvaluate)));
      const curve = `${values.size} of ${totalPoints} points`;
      const message = alignDoneFlag ? `Loss curve: ${curve}` : `${alignMessage ?? `Aligning (${alignedFrom?.method ?? DEFAULT_METHOD} matching)`}; loss curve: ${curve}`;
      progress.push({ stage: alignDoneFlag ? 'loss curve' : 'align', fraction: shown, message, ...(point ? { point } : {}) });
    };
    /** Records a point (once) and streams it; the aligned λ = 0 follows the naive one. */
    const record = (split: 'test' | 'train', path: 'naive' | 'aligned', i: number, m: Metrics): void => {
      const key = at(split, path, i);
      if (values.has(key)) return;
      values.set(key, m);
      report({ lambda: lambdas[i], loss: m.loss, acc: m.acc, ...(m.perplexity !== undefined ? { perplexity: m.perplexity } : {}), path, split });
      if (shareStart && path === 'naive' && i === 0) record(split, 'aligned', 0, m);
      if (shareEnd && path === 'naive' && i === last) record(split, 'aligned', last, m);
    };

    let align: AlignResult | undefined;
    let evaluation: EvaluationPlan | undefined;
    let lmInfo: LmEvaluationInfo | undefined;
    let requests = 0;
    let alignDone: Promise<void> = Promise.resolve();
    const lanes: Promise<void>[] = [];
    // Guided self-scheduling: a free worker takes a share of what is left, so the chunks
    // shrink towards the end and the workers finish together.
    const take = (split: string | undefined): { q: Queue; points: number[] } | undefined => {
      const left = queues.reduce((s, q) => s + q.todo.length, 0);
      const ready = (x: Queue): boolean => x.open && x.todo.length > 0;
      // Stay on the split this worker has cached (its data and first-layer outputs) while it has work;
      // on it, take the path with the most left, so both curves fill in together (the panel draws them live).
      const most = (xs: Queue[]): Queue | undefined => xs.reduce<Queue | undefined>((m, x) => (!m || x.todo.length > m.todo.length ? x : m), undefined);
      const q = most(queues.filter((x) => ready(x) && x.split === split)) ?? most(queues.filter(ready));
      if (!q) return undefined;
      // At most 8 λs a chunk, so a live plot gets points of both paths early.
      const n = Math.max(1, Math.min(q.todo.length, Math.ceil(left / (4 * workers.size)), MAX_CHUNK));
      return { q, points: q.todo.splice(0, n) };
    };
    const chunkRequest = (q: Queue, points: number[]): EvaluatePathRequest => {
      const aligned = q.path === 'aligned';
      // An orthogonal alignment's path runs from A' (folded norms) to B', both files.
      const orthogonal = aligned && referenceFolded !== undefined;
      const perms = aligned && !orthogonal ? (plan.source === 'permutations' ? plan.perms : plan.source === 'alignment' ? align?.perms : undefined) : undefined;
      return {
        kind: 'evaluatePath',
        a: orthogonal ? referenceFolded! : req.a,
        b: aligned && plan.source === 'checkpoint' ? plan.file : orthogonal ? align!.out! : req.b,
        ...(perms ? { perms } : {}),
        ...(req.spec !== undefined ? { spec: req.spec } : {}),
        lambdas: points.map((i) => lambdas[i]),
        data: { ...req.data, split: q.split },
        ...(req.model !== undefined ? { model: req.model } : {}),
        ...(req.resetBatchNorm !== undefined ? { resetBatchNorm: req.resetBatchNorm } : {}),
        ...(req.repair ? { repair: true } : {}),
        memoryBudget: share,
      };
    };
    const lane = async (slot: number): Promise<void> => {
      let lastSplit: string | undefined;
      for (;;) {
        const job = take(lastSplit);
        if (!job) {
          if (queues.some((q) => !q.open && q.todo.length > 0)) {
            await alignDone;
            continue;
          }
          return;
        }
        const id = requests++;
        const { q, points } = job;
        lastSplit = q.split;
        inFlight.set(id, 0);
        let streamed = 0;
        const r = await workers.run<'evaluatePath'>(
          chunkRequest(q, points),
          {
            signal: controller.signal,
            onProgress: (pr) => {
              inFlight.set(id, Math.max(inFlight.get(id) ?? 0, points.length * Math.min(1, pr.fraction ?? 0)));
              // The worker reports each λ as it finishes it, in order.
              if (pr.point && streamed < points.length && pr.point.lambda === lambdas[points[streamed]]) {
                record(q.split, q.path, points[streamed++], { loss: pr.point.loss, acc: pr.point.acc, ...(pr.point.perplexity !== undefined ? { perplexity: pr.point.perplexity } : {}) });
              } else report();
            },
          },
          slot,
        );
        if (r.loss.length !== points.length || r.acc.length !== points.length) {
          throw new EngineError('InvalidMessage', `invalid evaluatePath result: ${r.loss.length} values for ${points.length} lambdas on the ${q.path} path`);
        }
        inFlight.delete(id);
        pointsDone += points.length;
        evaluation ??= r.plan;
        lmInfo ??= r.lm;
        // Points whose progress message was not seen (it carries the same values as the result).
        points.forEach((i, k) => record(q.split, q.path, i, { loss: r.loss[k], acc: r.acc[k], ...(r.perplexity ? { perplexity: r.perplexity[k] } : {}) }));
      }
    };
    const used = new Set<number>();
    const tracked = (slot: number): Promise<void> => {
      used.add(slot);
      return lane(slot);
    };
    report();
    if (plan.source === 'alignment') {
      alignDone = workers
        // An explicit budget binds the alignment too: its worker's share, as the others evaluate meanwhile.
        .run<'align'>(req.memoryBudget !== undefined ? { ...plan.request, memoryBudget: share } : plan.request, {
          signal: controller.signal,
          onProgress: (p) => {
            alignFraction = Math.max(alignFraction, Math.min(1, p.fraction ?? 0));
            alignMessage = p.message ?? alignMessage;
            report();
          },
        }, 0)
        .then((r) => {
          align = r;
          if (r.symmetry === 'orthogonal') {
            if (r.referenceFolded === undefined || r.out === undefined) throw new EngineError('InvalidRequest', `${req.b}: the orthogonal alignment wrote nothing (its equivalence check failed: ${r.equivalence?.message ?? 'see the log'})`, req.b);
            referenceFolded = r.referenceFolded;
          }
          alignFraction = 1;
          alignDoneFlag = true;
          // Not for REPAIR (λ = 1 is rescaled to statistics measured on each model) nor non-finite weights.
          shareEnd = r.symmetry !== 'orthogonal' && r.equivalence?.ok === true && r.equivalence.batch === 'data' && !req.repair && !req.allowNonFinite;
          for (const q of queues) {
            if (shareEnd && q.path === 'aligned') {
              const k = q.todo.indexOf(last);
              if (k >= 0) {
                q.todo.splice(k, 1);
                toEvaluate--;
              }
              const naiveEnd = values.get(at(q.split, 'naive', last));
              if (naiveEnd) record(q.split, 'aligned', last, naiveEnd);
            }
            q.open = true;
          }
          report();
        });
      // The aligning worker joins the evaluation when it is done.
      lanes.push(alignDone.then(() => tracked(0)));
      for (let s = 1; s < workers.size; s++) lanes.push(tracked(s));
      // A failure anywhere stops every part (lanes waiting on the align see it rejected).
      await Promise.all([alignDone, ...lanes]);
    } else {
      for (let s = 0; s < workers.size; s++) lanes.push(tracked(s));
      await Promise.all(lanes);
    }

    const curve = (split: 'test' | 'train'): BarrierCurve => {
      const metrics = (p: 'naive' | 'aligned'): PathMetrics => {
        const points = lambdas.map((l, i) => {
          const m = values.get(at(split, p, i));
          if (!m) throw new EngineError('InvalidMessage', `invalid evaluatePath result: no value for lambda ${l} on the ${p} path`);
          return m;
        });
        const perplexity = points.every((m) => m.perplexity !== undefined) ? { perplexity: points.map((m) => m.perplexity as number) } : {};
        return { loss: points.map((m) => m.loss), acc: points.map((m) => m.acc), ...perplexity };
      };
      const naive = metrics('naive');
      const aligned = hasAligned ? metrics('aligned') : undefined;
      return {
        lambdas,
        naive,
        ...(aligned ? { aligned } : {}),
        barrier: { naive: barrierFromCurve(lambdas, naive.loss), ...(aligned ? { aligned: barrierFromCurve(lambdas, aligned.loss) } : {}) },
      };
    };

    const curves = splits.map((s) => [s, curve(s)] as const);
    const top = curves[0][1];
    const alignSummary: Omit<AlignResult, 'matrices'> | undefined = align ? (({ matrices: _m, ...rest }) => rest)(align) : undefined;
    return {
      ...top,
      backend: align?.backend ?? (await workers.backend()),
      seconds: (performance.now() - started) / 1000,
      workers: used.size,
      ...(curves.length > 1 ? { splits: Object.fromEntries(curves) } : {}),
      ...(alignSummary ? { align: alignSummary } : {}),
      ...(alignedFrom ? { alignedFrom: align?.symmetry === 'orthogonal' ? { ...alignedFrom, symmetry: 'orthogonal' as const } : alignedFrom } : {}),
      ...(evaluation ? { evaluation } : {}),
      ...(lmInfo ? { lm: lmInfo } : {}),
    };
  } catch (e) {
    controller.abort();
    if (opts.signal?.aborted) throw new EngineError('Cancelled', 'barrier cancelled');
    throw e;
  } finally {
    progress.stop();
    opts.signal?.removeEventListener('abort', onAbort);
    if (scratchDir !== undefined) rmSync(scratchDir, { recursive: true, force: true });
  }
}
