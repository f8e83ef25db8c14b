/**
 * Runtime validation of every message crossing the worker boundary, in both directions.
 * Hand-written guards (no schema library): each check names the field and the rule, so a
 * malformed message is rejected with one clear line instead of failing later somewhere deep.
 * Unknown extra fields are accepted (additive protocol changes stay compatible).
 */
import type { Progress } from '../core/checkpoint';
import { MAX_ITER, METHOD_IDS, methodInfo, optionAccepts, optionRule, SEED, type NumberOption } from '../core/methods';
import { EngineError } from './errors';
import type {
  AlignMethod,
  BackendChoice,
  BackendName,
  DataOptions,
  EngineRequest,
  FromWorker,
  ResultOf,
  SerializedError,
  ToWorker,
} from './protocol';

type Obj = Record<string, unknown>;

export const REQUEST_KINDS: readonly EngineRequest['kind'][] = [
  'align', 'merge', 'barrier', 'evaluatePath', 'tensorStats', 'train', 'backend',
];
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', ...BACKEND_NAMES];
const METHODS: readonly AlignMethod[] = METHOD_IDS;
const SPLITS = ['test', 'train', 'both'] as const;

function fail(where: string, rule: string): never {
  throw new EngineError('InvalidMessage', `invalid ${where}: ${rule}`);
}

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function obj(x: unknown, where: string): Obj {
  if (!isObj(x)) fail(where, 'must be an object');
  return x;
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0) fail(where, `field \`${key}\` must be a non-empty string`);
  return v;
}

function optStr(o: Obj, key: string, where: string): void {
  if (o[key] !== undefined) str(o, key, where);
}

/** Any number, NaN included (losses of a diverged interpolation are legitimately NaN/Infinity). */
function num(o: Obj, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number') fail(where, `field \`${key}\` must be a number`);
  return v;
}

function finite(o: Obj, key: string, where: string): number {
  const v = num(o, key, where);
  if (!Number.isFinite(v)) fail(where, `field \`${key}\` must be a finite number`);
  return v;
}

function optFinite(o: Obj, key: string, where: string): void {
  if (o[key] !== undefined) finite(o, key, where);
}

function int(o: Obj, key: string, where: string, min: number): number {
  const v = num(o, key, where);
  if (!Number.isSafeInteger(v) || v < min) fail(where, `field \`${key}\` must be an integer >= ${min}`);
  return v;
}

function optInt(o: Obj, key: string, where: string, min: number): void {
  if (o[key] !== undefined) int(o, key, where, min);
}

function bool(o: Obj, key: string, where: string): void {
  if (typeof o[key] !== 'boolean') fail(where, `field \`${key}\` must be a boolean`);
}

function optBool(o: Obj, key: string, where: string): void {
  if (o[key] !== undefined) bool(o, key, where);
}

function oneOf<T extends string>(o: Obj, key: string, allowed: readonly T[], where: string): T {
  const v = o[key];
  const found = allowed.find((a) => a === v);
  if (found === undefined) fail(where, `field \`${key}\` must be one of ${allowed.join(', ')}`);
  return found;
}

function numArray(o: Obj, key: string, where: string, opts: { finite?: boolean; integer?: boolean } = {}): number[] {
  const v = o[key];
  if (!Array.isArray(v)) fail(where, `field \`${key}\` must be an array of numbers`);
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e !== 'number') fail(where, `\`${key}[${i}]\` must be a number`);
    if (opts.finite && !Number.isFinite(e)) fail(where, `\`${key}[${i}]\` must be finite`);
    if (opts.integer && !Number.isSafeInteger(e)) fail(where, `\`${key}[${i}]\` must be an integer`);
  }
  return v as number[];
}

/** Each method's own options object (`ste`: epochs, batch size, learning rate), by its rules in src/core/methods. */
function methodOptionsOk(o: Obj, where: string): void {
  for (const m of METHOD_IDS.map(methodInfo)) {
    if (!m.optionsField || o[m.optionsField] === undefined) continue;
    const w = `${where} field \`${m.optionsField}\``;
    const opts = obj(o[m.optionsField], w);
    for (const opt of m.options) option(opts, opt, w);
  }
}

function memoryBudget(o: Obj, where: string): void {
  if (o.memoryBudget !== undefined && !(finite(o, 'memoryBudget', where) > 0)) fail(where, 'field `memoryBudget` must be a positive number of bytes');
}

function permRecord(x: unknown, where: string): void {
  const o = obj(x, where);
  for (const [name, v] of Object.entries(o)) {
    if (!Array.isArray(v)) fail(where, `permutation \`${name}\` must be an array of indices`);
    const seen = new Uint8Array(v.length);
    for (const e of v as unknown[]) {
      if (typeof e !== 'number' || !Number.isInteger(e) || e < 0 || e >= v.length || seen[e]) {
        fail(where, `permutation \`${name}\` is not a permutation of 0..${v.length - 1}`);
      }
      seen[e] = 1;
    }
  }
}

function dataOptions(x: unknown, where: string): DataOptions {
  const w = `${where} field \`data\``;
  const o = obj(x, w);
  str(o, 'path', w);
  if (o.split !== undefined) oneOf(o, 'split', SPLITS, w);
  optInt(o, 'limit', w, 1);
  optFinite(o, 'mean', w);
  if (o.std !== undefined && !(finite(o, 'std', w) > 0)) fail(w, 'field `std` must be positive');
  // Token data (language models).
  optStr(o, 'tokenizer', w);
  optInt(o, 'seqLen', w, 2);
  optInt(o, 'maskSeed', w, 0);
  optInt(o, 'maskId', w, 0);
  return o as unknown as DataOptions;
}

/** A numeric option by its rule in src/core/methods (the rule the CLI and the settings apply too). */
function option(o: Obj, opt: NumberOption, where: string): void {
  if (!optionAccepts(opt, num(o, opt.field, where))) fail(where, `field \`${opt.field}\` must be ${optionRule(opt)}`);
}

function seedAndIter(o: Obj, where: string): void {
  option(o, SEED, where);
  option(o, MAX_ITER, where);
}

/** Validates one request (also used by the CLI to check its own JSON before sending). */
export function validateRequest(x: unknown): EngineRequest {
  const o = obj(x, 'request');
  const kind = oneOf(o, 'kind', REQUEST_KINDS, 'request');
  const where = `${kind} request`;
  switch (kind) {
    case 'align': {
      str(o, 'a', where);
      str(o, 'b', where);
      optStr(o, 'out', where);
      optStr(o, 'spec', where);
      optStr(o, 'model', where);
      oneOf(o, 'method', METHODS, where);
      seedAndIter(o, where);
      if (o.data !== undefined) dataOptions(o.data, where);
      methodOptionsOk(o, where);
      optBool(o, 'includeMatrices', where);
      optBool(o, 'allowNonFinite', where);
      optInt(o, 'memoryBudget', where, 1);
      optBool(o, 'keepOnMismatch', where);
      break;
    }
    case 'merge': {
      const inputs = o.inputs;
      if (!Array.isArray(inputs) || inputs.length < 2 || !inputs.every((p) => typeof p === 'string' && p.length > 0)) {
        fail(where, 'field `inputs` must list at least two paths');
      }
      str(o, 'out', where);
      finite(o, 'lambda', where);
      bool(o, 'align', where);
      optStr(o, 'spec', where);
      seedAndIter(o, where);
      optBool(o, 'allowNonFinite', where);
      optInt(o, 'memoryBudget', where, 1);
      break;
    }
    case 'barrier': {
      str(o, 'a', where);
      str(o, 'b', where);
      dataOptions(o.data, where);
      optStr(o, 'model', where);
      optStr(o, 'spec', where);
      int(o, 'steps', where, 2);
      bool(o, 'align', where);
      seedAndIter(o, where);
      optBool(o, 'resetBatchNorm', where);
      optBool(o, 'repair', where);
      optBool(o, 'allowNonFinite', where);
      if (o.method !== undefined) oneOf(o, 'method', METHODS, where);
      methodOptionsOk(o, where);
      if (o.perms !== undefined) permRecord(o.perms, `${where} field \`perms\``);
      optStr(o, 'alignedCheckpoint', where);
      if (o.perms !== undefined && o.alignedCheckpoint !== undefined) fail(where, 'give `perms` or `alignedCheckpoint`, not both');
      memoryBudget(o, where);
      break;
    }
    case 'evaluatePath': {
      str(o, 'a', where);
      str(o, 'b', where);
      if (o.perms !== undefined) permRecord(o.perms, `${where} field \`perms\``);
      optStr(o, 'spec', where);
      if (numArray(o, 'lambdas', where, { finite: true }).length === 0) fail(where, 'field `lambdas` must not be empty');
      dataOptions(o.data, where);
      optStr(o, 'model', where);
      optBool(o, 'resetBatchNorm', where);
      optBool(o, 'repair', where);
      memoryBudget(o, where);
      break;
    }
    case 'tensorStats': {
      str(o, 'path', where);
      str(o, 'tensor', where);
      const bins = int(o, 'bins', where, 1);
      if (bins > 100_000) fail(where, 'field `bins` must be at most 100000');
      break;
    }
    case 'train': {
      dataOptions(o.data, where);
      const widths = numArray(o, 'widths', where, { integer: true });
      if (widths.length < 2 || widths.some((w) => w < 1)) fail(where, 'field `widths` must list at least two positive widths');
      int(o, 'epochs', where, 1);
      int(o, 'batchSize', where, 1);
      if (!(finite(o, 'learningRate', where) > 0)) fail(where, 'field `learningRate` must be positive');
      int(o, 'seed', where, 0);
      str(o, 'out', where);
      break;
    }
    case 'backend':
      break;
  }
  return o as unknown as EngineRequest;
}

/** Validates a message the worker receives. */
export function validateToWorker(x: unknown): ToWorker {
  const o = obj(x, 'message to worker');
  const type = oneOf(o, 'type', ['request', 'cancel'] as const, 'message to worker');
  int(o, 'id', `${type} message`, 1);
  if (type === 'request') validateRequest(o.request);
  return o as unknown as ToWorker;
}

export function validateProgress(x: unknown): Progress {
  const where = 'progress';
  const o = obj(x, where);
  str(o, 'stage', where);
  optFinite(o, 'fraction', where);
  optStr(o, 'message', where);
  optInt(o, 'iteration', where, 0);
  if (o.objective !== undefined) num(o, 'objective', where);
  if (o.point !== undefined) {
    const p = obj(o.point, `${where} field \`point\``);
    finite(p, 'lambda', `${where} point`);
    num(p, 'loss', `${where} point`);
    num(p, 'acc', `${where} point`);
    if (p.path !== undefined) oneOf(p, 'path', ['naive', 'aligned'] as const, `${where} point`);
    if (p.split !== undefined) oneOf(p, 'split', ['test', 'train'] as const, `${where} point`);
  }
  return o as unknown as Progress;
}

function serializedError(x: unknown): SerializedError {
  const where = 'error message';
  const o = obj(x, where);
  if (typeof o.message !== 'string') fail(where, 'field `message` must be a string');
  str(o, 'kind', where);
  optStr(o, 'file', where);
  if (o.stack !== undefined && typeof o.stack !== 'string') fail(where, 'field `stack` must be a string');
  return o as unknown as SerializedError;
}

/**
 * Validates a message the caller receives. Results are checked for being an object here and
 * in full by `validateResult`, once the caller has matched the id to its request kind.
 */
export function validateFromWorker(x: unknown): FromWorker {
  const o = obj(x, 'message from worker');
  const type = oneOf(o, 'type', ['ready', 'progress', 'result', 'error'] as const, 'message from worker');
  if (type === 'ready') {
    oneOf(o, 'backend', BACKEND_NAMES, 'ready message');
    return o as unknown as FromWorker;
  }
  // id 0 is the worker's own start-up failure (no request pending yet).
  int(o, 'id', `${type} message`, type === 'error' ? 0 : 1);
  if (type === 'progress') validateProgress(o.progress);
  if (type === 'result') obj(o.result, 'result message field `result`');
  if (type === 'error') serializedError(o.error);
  return o as unknown as FromWorker;
}

function groupsOk(x: unknown, where: string): void {
  if (!Array.isArray(x)) fail(where, 'field `groups` must be an array');
  for (const g of x as unknown[]) {
    const o = obj(g, `${where} group`);
    str(o, 'name', where);
    int(o, 'size', where, 0);
    int(o, 'moved', where, 0);
    num(o, 'objectiveBefore', where);
    num(o, 'objectiveAfter', where);
  }
}

function matricesOk(x: unknown, where: string): void {
  if (!Array.isArray(x)) fail(where, 'field `matrices` must be an array');
  for (const m of x as unknown[]) {
    const o = obj(m, `${where} matrix`);
    str(o, 'name', where);
    const n = int(o, 'size', where, 0);
    for (const k of ['before', 'after']) {
      const v = o[k];
      if (!(v instanceof Float32Array) || v.length !== n * n) fail(where, `matrix \`${String(o.name)}\` field \`${k}\` must be a Float32Array of ${n}x${n}`);
    }
  }
}

function alignOk(o: Obj, where: string): void {
  oneOf(o, 'method', METHODS, where);
  num(o, 'seconds', where);
  int(o, 'iterations', where, 0);
  num(o, 'objectiveBefore', where);
  num(o, 'objectiveAfter', where);
  permRecord(o.perms, `${where} field \`perms\``);
  optStr(o, 'out', where);
  optBool(o, 'written', where);
  oneOf(o, 'backend', BACKEND_NAMES, where);
  optStr(o, 'family', where);
  groupsOk(o.groups, where);
  if (o.matrices !== undefined) matricesOk(o.matrices, where);
  if (o.attention !== undefined && !Array.isArray(o.attention)) fail(where, 'field `attention` must be an array');
  if (o.distance !== undefined) {
    const d = obj(o.distance, `${where} field \`distance\``);
    num(d, 'naive', where);
    num(d, 'aligned', where);
  }
  if (o.equivalence !== undefined) {
    const e = obj(o.equivalence, `${where} field \`equivalence\``);
    num(e, 'maxAbsDiff', where);
    num(e, 'relDiff', where);
    bool(e, 'ok', where);
    oneOf(e, 'batch', ['data', 'random'] as const, where);
    optStr(e, 'message', where);
  }
}

function sameLengths(o: Obj, keys: readonly string[], where: string): void {
  const lengths = keys.map((k) => numArray(o, k, where).length);
  if (lengths.some((l) => l !== lengths[0])) fail(where, `fields ${keys.map((k) => `\`${k}\``).join(', ')} must have the same length`);
}

function curveOk(o: Obj, where: string): void {
  const n = numArray(o, 'lambdas', where).length;
  for (const path of ['naive', 'aligned']) {
    if (path === 'aligned' && o.aligned === undefined) continue;
    const m = obj(o[path], `${where} field \`${path}\``);
    sameLengths(m, ['loss', 'acc', ...(m.perplexity !== undefined ? ['perplexity'] : [])], `${where} field \`${path}\``);
    if (numArray(m, 'loss', where).length !== n) fail(where, `\`${path}.loss\` must have one value per lambda`);
  }
  const b = obj(o.barrier, `${where} field \`barrier\``);
  num(b, 'naive', where);
  if (b.aligned !== undefined) num(b, 'aligned', where);
}

function lmInfoOk(o: Obj, where: string): void {
  oneOf(o, 'objective', ['causal', 'masked'] as const, where);
  int(o, 'sequences', where, 0);
  int(o, 'seqLen', where, 0);
  int(o, 'positions', where, 0);
  str(o, 'model', where);
  str(o, 'data', where);
}

/** Validates a result against the kind of the request it answers. */
export function validateResult<K extends EngineRequest['kind']>(kind: K, x: unknown): ResultOf[K] {
  const where = `${kind} result`;
  const o = obj(x, where);
  switch (kind) {
    case 'align':
      alignOk(o, where);
      break;
    case 'merge':
      str(o, 'out', where);
      if (!Array.isArray(o.inputs)) fail(where, 'field `inputs` must be an array');
      num(o, 'lambda', where);
      bool(o, 'aligned', where);
      oneOf(o, 'method', ['weight', 'mergemany', 'none'] as const, where);
      num(o, 'seconds', where);
      oneOf(o, 'backend', BACKEND_NAMES, where);
      break;
    case 'barrier':
      curveOk(o, where);
      oneOf(o, 'backend', BACKEND_NAMES, where);
      num(o, 'seconds', where);
      int(o, 'workers', where, 1);
      if (o.splits !== undefined) {
        const s = obj(o.splits, where);
        for (const split of ['test', 'train']) if (s[split] !== undefined) curveOk(obj(s[split], where), `${where} split ${split}`);
      }
      if (o.align !== undefined) alignOk(obj(o.align, where), `${where} field \`align\``);
      if (o.lm !== undefined) lmInfoOk(obj(o.lm, `${where} field \`lm\``), `${where} field \`lm\``);
      if (o.alignedFrom !== undefined) {
        const f = obj(o.alignedFrom, `${where} field \`alignedFrom\``);
        oneOf(f, 'method', [...METHODS, 'unknown'] as const, `${where} field \`alignedFrom\``);
        oneOf(f, 'source', ['alignment', 'permutations', 'checkpoint'] as const, `${where} field \`alignedFrom\``);
        optStr(f, 'checkpoint', `${where} field \`alignedFrom\``);
      }
      break;
    case 'evaluatePath':
      sameLengths(o, ['lambdas', 'loss', 'acc', ...(o.perplexity !== undefined ? ['perplexity'] : [])], where);
      if (o.lm !== undefined) lmInfoOk(obj(o.lm, `${where} field \`lm\``), `${where} field \`lm\``);
      break;
    case 'tensorStats':
      str(o, 'tensor', where);
      int(o, 'count', where, 0);
      for (const k of ['min', 'max', 'mean', 'std']) num(o, k, where);
      int(o, 'nanCount', where, 0);
      int(o, 'infCount', where, 0);
      {
        const h = obj(o.histogram, `${where} field \`histogram\``);
        const edges = numArray(h, 'edges', where).length;
        const counts = numArray(h, 'counts', where, { integer: true }).length;
        if (edges !== counts + 1 && !(edges === 0 && counts === 0)) fail(where, 'histogram must have one more edge than counts');
      }
      break;
    case 'train':
      str(o, 'out', where);
      num(o, 'seconds', where);
      num(o, 'finalLoss', where);
      if (o.testLoss !== undefined) num(o, 'testLoss', where);
      if (o.testAcc !== undefined) num(o, 'testAcc', where);
      oneOf(o, 'backend', BACKEND_NAMES, where);
      break;
    case 'backend':
      oneOf(o, 'backend', BACKEND_NAMES, where);
      break;
  }
  return o as unknown as ResultOf[K];
}

export function validateBackendChoice(x: unknown): BackendChoice {
  const found = BACKEND_CHOICES.find((c) => c === x);
  if (found === undefined) throw new EngineError('InvalidRequest', `unknown backend \`${String(x)}\`: use one of ${BACKEND_CHOICES.join(', ')}`);
  return found;
}
