/**
 * Command-line parsing for `rebasin`. Commands, flags and JSON field names are a contract
 * (scripts call them): extend, never rename.
 */
import { DEFAULT_METHOD, MAX_ITER, METHODS, SEED, type NumberOption } from '../core/methods';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseByteSize } from '../core/memoryBudget';

export class UsageError extends Error {
  readonly kind = 'UsageError';
}

/** Each method's own numeric options (`--ste-epochs` ...), declared by the method (src/core/methods). */
const METHOD_OPTIONS: readonly NumberOption[] = METHODS.flatMap((m) => m.options);
/** Every numeric option's flag: the shared seed and sweep cap, then the methods' own. */
const OPTION_FLAGS: readonly NumberOption[] = [SEED, MAX_ITER, ...METHOD_OPTIONS];

/** One numeric option's line of the help: `--ste-lr X  ste: learning rate (default 1e-3)`. */
function optionUsage(o: NumberOption): string {
  const d = o.default !== 0 && Math.abs(o.default) < 0.01 ? o.default.toExponential() : String(o.default);
  return `  ${`--${o.flag} ${o.integer ? 'N' : 'X'}`.padEnd(22)}${o.help} (default ${d})`;
}

const methodList = METHODS.map((m) => (m.id === DEFAULT_METHOD ? `${m.id} (default)` : m.id)).join(' | ');
const needData = METHODS.filter((m) => m.needsData).map((m) => m.id).join(' and ');

export const USAGE = `usage: rebasin <command> [options]

commands:
  inspect FILE                 header of a checkpoint (.safetensors, sharded index, PyTorch .pt/.bin/.ckpt, Flax msgpack): tensors, sizes, architecture
  spec FILE                    print the inferred permutation spec ({"axes": ...}) to edit and pass with --spec
  align A B --out OUT          permute B's hidden units onto A (weight matching by default) and write OUT
  merge A B [C ...] --out OUT  align every input to A and merge them in weight space
  barrier A B --data PATH      loss and accuracy along the linear path, naive and aligned, and both barriers
  convert IN --out OUT         write a PyTorch or Flax checkpoint as OUT.safetensors (same names, dtypes, layouts)
  diff A B [--align]           how far B is from A per tensor, per layer and in total (and pi(B) with --align)
  scan FILE                    every tensor's min/max/mean/std, NaN/Inf/zero counts and problem flags

  A checkpoint may be named hf:org/name[@rev]: the model's snapshot in the local Hugging Face cache
  ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; never downloaded).

options:
  --json                one JSON object on stdout
  --out FILE            output checkpoint (never one of the inputs)
  --spec FILE           permutation spec JSON ({"axes": {"tensor": ["P_0", null]}}); inferred when absent
  --method M            align/barrier: ${methodList} (${needData} need --data)
  --symmetry S          align/barrier/merge: permutation (default) | orthogonal (GPT-2, Llama family, Mixtral, ViT:
                        orthogonal residual and per-head maps; weight, activation, and ste for language models;
                        writes A' beside OUT)
  --aligned FILE        barrier: evaluate this aligned checkpoint as pi(B) instead of aligning again
${[SEED, MAX_ITER].map(optionUsage).join('\n')}
  --memory-budget SIZE  align/merge/barrier: memory for the computation, e.g. 8GB, 512MiB (default: half of RAM)
  --lambda L            merge: weight of the other model(s), (1-L)*A + L*pi(B) (default 0.5)
  --no-align            merge/barrier: skip alignment (naive)
  --align               diff: also align B onto A (as align does, with --method, --spec ...; nothing
                        written) and compare A with pi(B)
  --data PATH           evaluation data: IDX folder (MNIST layout), safetensors with x/y, .npy/.npz;
                        for Hugging Face language models: token ids [N, T] (.npy/.npz/.safetensors
                        input_ids) or raw text (.txt/.jsonl, with the checkpoint's tokenizer.json)
  --tokenizer FILE      tokenizer.json for raw text (default: the one beside checkpoint A)
  --seq-len N           raw text: tokens per sequence (default: the model's maximum, at most 512)
  --mask-seed N         BERT: seed of the 15% masked-LM mask (default 0)
  --mask-id N           BERT: mask token id (default: the tokenizer's [MASK] / <mask>)
  --split S             test (default) | train | both
  --limit N             use at most N examples
  --model FILE          model config JSON (default: <checkpoint>.rebasin.json beside A, else inferred)
  --steps N             barrier: lambda grid points (default 25)
  --reset-bn            recompute BatchNorm statistics along the path (paper appendix A.4)
  --repair              barrier: REPAIR (Jordan et al. 2022) along the path, for MLPs without BatchNorm
                        and language models (the MLP units of every block or expert); merge (two
                        inputs, with --data): the merged model repaired at --lambda, folded into its weights
${METHOD_OPTIONS.map(optionUsage).join('\n')}
  --backend B           auto (default) | tensorflow | wasm | cpu
  --workers N           compute workers for barrier curves (default: number of cores)
  --allow-non-finite    accept NaN/Inf weights instead of refusing them
  --keep-on-mismatch    align: write OUT even when the equivalence check fails (default: write nothing)
  --out-of-core         align (weight matching): read the tensors from disk per product instead of holding
                        the pair (done anyway when the pair does not fit --memory-budget)
  --debug               stack traces on errors
  -h, --help            this text

exit status: 0 success, 1 error (one line naming the file), 2 bad usage`;

const fixedOptions = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  out: { type: 'string' },
  spec: { type: 'string' },
  method: { type: 'string' },
  symmetry: { type: 'string' },
  aligned: { type: 'string' },
  'memory-budget': { type: 'string' },
  lambda: { type: 'string' },
  'no-align': { type: 'boolean' },
  align: { type: 'boolean' },
  data: { type: 'string' },
  tokenizer: { type: 'string' },
  'seq-len': { type: 'string' },
  'mask-seed': { type: 'string' },
  'mask-id': { type: 'string' },
  split: { type: 'string' },
  limit: { type: 'string' },
  model: { type: 'string' },
  steps: { type: 'string' },
  'reset-bn': { type: 'boolean' },
  repair: { type: 'boolean' },
  backend: { type: 'string' },
  workers: { type: 'string' },
  'allow-non-finite': { type: 'boolean' },
  'keep-on-mismatch': { type: 'boolean' },
  'out-of-core': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/**
 * Every flag: the fixed ones above and one per numeric option of the registry. The option flags
 * are left out of the type: they are read by their option (commands.ts `optionFlag`), never by name.
 */
const options = {
  ...fixedOptions,
  ...Object.fromEntries(OPTION_FLAGS.map((o) => [o.flag, { type: 'string' }])),
} as typeof fixedOptions;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true; strict: true }>>['values'];

export interface ParsedArgs {
  readonly command: string;
  readonly positionals: readonly string[];
  readonly values: Values;
}

export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [command = '', ...positionals] = parsed.positionals;
  return { command, positionals, values: parsed.values };
}

/** A string flag's value by name: how the numeric options' flags (left out of `Values`) are read. */
export function flagText(p: ParsedArgs, flag: string): string | undefined {
  const value = (p.values as Readonly<Record<string, string | boolean | undefined>>)[flag];
  return typeof value === 'string' ? value : undefined;
}

function parseNumber(flag: string, text: string | undefined, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag} must be ${rule}, got "${text}"`);
  return n;
}

// Safe integers only: 1e300 is an integer to JavaScript, but the engine's requests refuse it, and
// that refusal would come back as an error (exit 1) rather than as bad usage (exit 2).
export const int = (flag: string, text: string | undefined, fallback: number, min = 0): number =>
  parseNumber(flag, text, fallback, (n) => Number.isSafeInteger(n) && n >= min, `an integer >= ${min}`);

export const optionalInt = (flag: string, text: string | undefined, min = 1): number | undefined =>
  text === undefined ? undefined : int(flag, text, 0, min);

export const fraction = (flag: string, text: string | undefined, fallback: number): number =>
  parseNumber(flag, text, fallback, (n) => n >= 0 && n <= 1, 'a number from 0 to 1');

export const positive = (flag: string, text: string | undefined, fallback: number): number =>
  parseNumber(flag, text, fallback, (n) => n > 0, 'a positive number');

/** A byte size (`8GB`, `512MiB`, `1.5GiB`, `1000000`), or undefined when the flag is absent. */
export function byteSize(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = parseByteSize(text);
  if (n === null) throw new UsageError(`--${flag} must be a size such as 8GB or 512MiB, got "${text}"`);
  return n;
}

export function oneOf<T extends string>(flag: string, text: string | undefined, allowed: readonly T[], fallback: T): T {
  if (text === undefined) return fallback;
  if ((allowed as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${text}"`);
}

export function expectPositionals(p: ParsedArgs, min: number, max: number, what: string): readonly string[] {
  if (p.positionals.length < min || p.positionals.length > max) {
    throw new UsageError(`${p.command} expects ${what}`);
  }
  return p.positionals;
}
