/**
 * `npm run bench -- scale [--preset 100m|1b|tiny]`: issue 14's scale bench. Generates a synthetic
 * Llama pair (bench/scale/generate.ts; cached under bench-output/scale/<preset>), runs
 * `rebasin align A B --out OUT` as a child process and prints its wall time, peak RSS (VmHWM of
 * the child from /proc, polled), bytes read (/proc/<pid>/io: read_bytes from the disk and rchar,
 * page cache included), and whether the known permutation was recovered: the aligned output is
 * compared with A tensor by tensor (bit-exact), reported per symmetry group (residual stream,
 * each layer's MLP, each layer's attention heads).
 *
 * Flags: `--dir DIR` (where the pair, the output and the CLI's progress log go; default
 * bench-output/scale/<preset>), `--backend wasm|tensorflow|both` (default both when the native
 * backend can be provided, one align each, never at the same time; for `7b` native alone),
 * `--memory-budget SIZE` (passed to align: a pair over it is matched out of core). Before
 * generating, the free disk is checked against the pair and one output (about 40 GB for 7b). The CLI's stderr (progress,
 * `--debug` engine lines) is kept in DIR/align-<backend>.log with a timestamp per line, and the
 * bench prints how long each stage (loading, matching, writing) took from it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openCheckpoint } from '../../src/core/safetensors';
import { generateLlamaPair, parameterCount, PRESET_SHARD_BYTES, PRESETS } from './generate';
import { provideNative } from '../native';
import { runMeasured } from '../measuredChild';

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');

const gib = (b: number | undefined): string => (b === undefined ? 'n/a' : `${(b / 2 ** 30).toFixed(2)} GiB`);

/** Which symmetry group a Llama tensor's exact recovery speaks for. */
function groupOf(name: string): string {
  const m = /^model\.layers\.(\d+)\.(mlp|self_attn)\./.exec(name);
  if (m) return m[2] === 'mlp' ? 'mlp' : 'heads';
  return 'residual';
}

/** Per group, how many tensors of the output equal A's bit for bit. */
async function compareWithA(aIndex: string, outIndex: string): Promise<Map<string, { equal: number; total: number }>> {
  const a = await openCheckpoint(aIndex);
  const o = await openCheckpoint(outIndex);
  try {
    const groups = new Map<string, { equal: number; total: number }>();
    for (const t of a.tensors) {
      const g = groupOf(t.name);
      const entry = groups.get(g) ?? { equal: 0, total: 0 };
      const same = o.get(t.name) !== undefined && Buffer.from(await a.readRaw(t.name)).equals(Buffer.from(await o.readRaw(t.name)));
      groups.set(g, { equal: entry.equal + (same ? 1 : 0), total: entry.total + 1 });
    }
    return groups;
  } finally {
    await a.close();
    await o.close();
  }
}

/** Stage of a progress line of the CLI's log, by its words. */
function stageOf(line: string): string | undefined {
  if (/Reading /.test(line)) return 'loading';
  if (/Weight matching/.test(line)) return 'matching';
  if (/Checking that/.test(line)) return 'equivalence check';
  if (/Writing /.test(line)) return 'writing';
  return undefined;
}

/**
 * Where the time went, from the timestamped log: each stage from its first progress line to the
 * next stage's (progress starts 5 s in off a terminal, so loading is counted from 0).
 */
export function stageTimes(log: string, wall: number): string {
  const firsts: [string, number][] = [];
  for (const line of log.split('\n')) {
    const m = /^\s*([\d.]+) (.*)$/.exec(line);
    if (!m) continue;
    const stage = stageOf(m[2]);
    if (stage && !firsts.some(([s]) => s === stage)) firsts.push([stage, firsts.length === 0 ? 0 : Number(m[1])]);
  }
  return firsts.map(([s, t], i) => `${s} ${((i + 1 < firsts.length ? firsts[i + 1][1] : wall) - t).toFixed(1)} s`).join(', ');
}

/**
 * Where weight matching's solves spent their time, from the engine's debug lines
 * ("weight matching: sweep 1, layer 29 MLP (11008 units): cost matrix 20.08 s (products and reads),
 * assignment 0.52 s"), summed per kind of permutation: what bounds the time.
 */
export function solveTimes(log: string): string {
  const kinds = new Map<string, { solves: number; cost: number; assignment: number }>();
  for (const m of log.matchAll(/weight matching: sweep \d+, (?:layer \d+ )?(MLP|attention heads|residual stream|\S+) \(\d+ units\): cost matrix ([\d.]+) s[^,]*, assignment ([\d.]+) s/g)) {
    const k = kinds.get(m[1]) ?? { solves: 0, cost: 0, assignment: 0 };
    k.solves++;
    k.cost += Number(m[2]);
    k.assignment += Number(m[3]);
    kinds.set(m[1], k);
  }
  return [...kinds].map(([kind, k]) => `${kind}: ${k.solves} solves, cost matrices ${k.cost.toFixed(1)} s, assignments ${k.assignment.toFixed(1)} s`).join('; ');
}

export interface ScaleOptions {
  readonly preset: string;
  /** Folder of the pair, outputs and logs (default bench-output/scale/<preset>). */
  readonly dir?: string;
  readonly backend?: 'wasm' | 'tensorflow' | 'both';
  /** `--memory-budget` of the align runs (e.g. 3GB): a pair over it is matched out of core. */
  readonly memoryBudget?: string;
}

/** Free bytes of the file system holding `dir` (or its nearest existing parent). */
function freeBytes(dir: string): number {
  let at = dir;
  while (!fs.existsSync(at)) at = path.dirname(at);
  const s = fs.statfsSync(at);
  return s.bavail * s.bsize;
}

export async function benchScale(opts: ScaleOptions): Promise<string[]> {
  const presetName = opts.preset;
  if (!(presetName in PRESETS)) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const shape = PRESETS[presetName as keyof typeof PRESETS];
  const lines: string[] = [];
  const dir = path.resolve(opts.dir ?? path.join(root, 'bench-output', 'scale', presetName));
  const permutationFile = path.join(dir, 'permutation.json');
  // The pair and one aligned output, BF16 (the output is removed after each comparison).
  const diskNeeded = 3 * 2 * parameterCount(shape);
  if (!fs.existsSync(permutationFile)) {
    fs.rmSync(dir, { recursive: true, force: true });
    const free = freeBytes(dir);
    if (free < diskNeeded * 1.05) {
      lines.push(`not run: the ${presetName} pair and its aligned output need ${gib(diskNeeded)} of disk, ${gib(free)} free under ${dir}`);
      return lines;
    }
    const t0 = performance.now();
    await generateLlamaPair({ shape, dir, seed: 0, maxShardBytes: PRESET_SHARD_BYTES[presetName as keyof typeof PRESETS] });
    lines.push(`generated the pair in ${((performance.now() - t0) / 1000).toFixed(1)} s (cached in ${dir})`);
  } else {
    lines.push(`pair cached in ${dir}`);
  }
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const inputBytes = ['a', 'b'].reduce((s, side) => s + fs.readdirSync(path.join(dir, side)).filter((f) => f.endsWith('.safetensors')).reduce((t, f) => t + fs.statSync(path.join(dir, side, f)).size, 0), 0);
  lines.push(`${presetName}: ${shape.layers} layers, hidden ${shape.hidden}, MLP ${shape.intermediate}, ${shape.heads} heads in ${shape.kvHeads} KV groups, vocab ${shape.vocab}: ${(parameterCount(shape) / 1e6).toFixed(1)}M parameters per model, ${gib(inputBytes)} of BF16 shards for the pair`);
  // A 7B pair on wasm would take hours: native alone unless asked.
  const wanted = opts.backend ?? (presetName === '7b' ? 'tensorflow' : 'both');
  if (!['wasm', 'tensorflow', 'both'].includes(wanted)) throw new Error(`--backend must be wasm, tensorflow or both, not ${wanted}`);
  const backends: ('wasm' | 'tensorflow')[] = [];
  if (wanted !== 'tensorflow') backends.push('wasm');
  if (wanted !== 'wasm') {
    const native = provideNative();
    if (native.ok) backends.push('tensorflow');
    else lines.push(`native tensorflow: not measured (${native.why})`);
  }
  for (const backend of backends) {
    lines.push(`-- backend ${backend} (load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start)`);
    if (opts.memoryBudget) lines.push(`memory budget ${opts.memoryBudget} (--memory-budget)`);
    lines.push(...(await alignAndCompare(a, b, path.join(dir, `aligned-${backend}`), path.join(dir, `align-${backend}.log`), backend, inputBytes, opts.memoryBudget)));
  }
  return lines;
}

async function alignAndCompare(a: string, b: string, out: string, logFile: string, backend: string, inputBytes: number, memoryBudget?: string): Promise<string[]> {
  const lines: string[] = [];
  fs.rmSync(out, { recursive: true, force: true });
  const budget = memoryBudget ? ['--memory-budget', memoryBudget] : [];
  const r = await runMeasured(process.execPath, [cli, 'align', a, b, '--out', out, '--json', '--debug', '--backend', backend, ...budget], logFile);
  lines.push(`(load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; progress log ${logFile})`);
  if (r.code !== 0) {
    lines.push(`rebasin align FAILED (exit ${r.code}) after ${r.seconds.toFixed(1)} s, peak RSS ${gib(r.peakRssBytes)}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return lines;
  }
  let iterations = '?';
  try {
    const json = JSON.parse(r.stdout) as { iterations?: number; seconds?: number; backend?: string };
    iterations = `${json.iterations} sweeps, engine ${json.seconds?.toFixed(1)} s on ${json.backend}`;
  } catch {
    // keep '?': the figures below do not depend on it
  }
  lines.push(`rebasin align: wall ${r.seconds.toFixed(1)} s (${iterations}); peak RSS ${gib(r.peakRssBytes)} (${r.peakRssBytes ? (r.peakRssBytes / inputBytes).toFixed(2) : '?'} x the inputs); read from disk ${gib(r.readBytes)}, read() total ${gib(r.rchar)}`);
  const log = fs.readFileSync(logFile, 'utf8');
  lines.push(`  stages: ${stageTimes(log, r.seconds)}`);
  const solves = solveTimes(log);
  if (solves) lines.push(`  weight matching's solves: ${solves}`);
  const read = /align: (read \d+ tensors .*)$/m.exec(log);
  if (read) lines.push(`  engine: ${read[1]}`);
  for (const m of log.matchAll(/align: (out of core.*)$/gm)) lines.push(`  engine: ${m[1]}`);
  const skipped = /(equivalence check skipped: .*)$/m.exec(log);
  if (skipped) lines.push(`  ${skipped[1]}`);
  const groups = await compareWithA(path.join(a, 'model.safetensors.index.json'), path.join(out, 'model.safetensors.index.json'));
  const total = [...groups.values()].reduce((s, g) => ({ equal: s.equal + g.equal, total: s.total + g.total }), { equal: 0, total: 0 });
  lines.push(`recovered exactly (aligned output == A, bit for bit): ${total.equal} of ${total.total} tensors${total.equal === total.total ? ' -- the whole permutation' : ''}`);
  for (const [g, c] of [...groups].sort()) {
    const label = g === 'residual' ? 'residual stream (embeddings, norms, lm_head)' : g === 'mlp' ? 'MLP tensors (gate/up/down)' : 'attention tensors (q/k/v/o: heads and KV groups)';
    lines.push(`  ${label}: ${c.equal} of ${c.total}${c.equal === c.total ? ' recovered' : ''}`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  return lines;
}
