/**
 * End to end, as a user runs it: `node dist/cli.js align A B --out OUT` on two
 * 784-512-512-512-10 MLPs, against a numpy+scipy script doing the same matching
 * (bench/numpy_matching.py, wall time of the whole process: start, load, match; run without
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE so numpy has its full BLAS) and, with `--previous PATH`, a
 * previous build's dist/cli.js on the same inputs. Also the
 * peak resident memory of aligning two large checkpoints (GNU time's max RSS of the CLI
 * process, worker threads included) against the size of the inputs.
 *
 * Needs `npm run build` first (bench/run.ts does it). Run alone: node --import tsx bench/alignCli.ts [PREVIOUS_CLI]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasScipy, mlpSpec, noisyPermutedCopy, randomMlp, writeSafetensors } from './matching';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');

function wallSeconds(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): { seconds: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

/** Median of a few wall times (the machine may be shared: one quiet run would flatter, one busy run mislead). */
function median(times: readonly number[]): number {
  const sorted = [...times].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * The numpy baseline's environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on some of our
 * machines for old OpenBLAS builds) slow a current numpy down, so its command alone runs without them.
 */
function fullBlasEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export interface AlignCliOptions {
  /** A previous build's dist/cli.js, timed on the same inputs in the same run (`npm run bench -- align --previous PATH`). */
  readonly previousCli?: string;
}

/** Max RSS in MiB of a command, from GNU time (`/usr/bin/time -f %M`, KiB). */
function peakRssMiB(cmd: string, args: readonly string[]): number | undefined {
  if (!fs.existsSync('/usr/bin/time')) return undefined;
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /MAXRSS (\d+)/.exec(r.stderr);
  return m ? Number(m[1]) / 1024 : undefined;
}

export async function benchAlignCli(opts: AlignCliOptions = {}): Promise<string[]> {
  const lines: string[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-cli-'));
  try {
    const widths = [784, 512, 512, 512, 10];
    const spec = mlpSpec(widths);
    fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    const a = randomMlp(1, widths);
    const pairs: [string, Map<string, { shape: readonly number[]; data: Float32Array }>][] = [
      ['independent random-init models', randomMlp(2, widths)],
      ['noisy permuted copy', noisyPermutedCopy(spec, a, 7, 0.5)],
    ];
    writeSafetensors(path.join(dir, 'a.safetensors'), a);
    const python = hasScipy();
    lines.push(`end-to-end align of two ${widths.join('-')} MLPs (wall time of the whole command, median of 3; load average ${os.loadavg()[0].toFixed(2)} on ${os.availableParallelism()} cores)`);
    for (const [label, b] of pairs) {
      const bFile = path.join(dir, `b-${label.replace(/\W+/g, '-')}.safetensors`);
      writeSafetensors(bFile, b);
      const out = path.join(dir, 'out.safetensors');
      const alignArgs = ['align', path.join(dir, 'a.safetensors'), bFile, '--out', out, '--json', '--backend', 'wasm'];
      const pyArgs = [path.join(__dirname, 'numpy_matching.py'), path.join(dir, 'spec.json'), path.join(dir, 'a.safetensors'), bFile, '0', '100'];
      const previous = opts.previousCli;
      // The commands take turns, round by round: on a shared machine a change of load then
      // falls on all of them alike, not on whichever ran last.
      const runs: { [K in 'ours' | 'py' | 'prev']: number[] } = { ours: [], py: [], prev: [] };
      let json = '';
      let pyJson = '';
      for (let round = 0; round < 3; round++) {
        fs.rmSync(out, { force: true });
        const r = wallSeconds(process.execPath, [cli, ...alignArgs]);
        json = r.stdout;
        runs.ours.push(r.seconds);
        if (python) {
          const p = wallSeconds('python3', pyArgs, fullBlasEnv());
          pyJson = p.stdout;
          runs.py.push(p.seconds);
        }
        if (previous) {
          fs.rmSync(out, { force: true });
          runs.prev.push(wallSeconds(process.execPath, [path.resolve(previous), ...alignArgs]).seconds);
        }
      }
      const ours = median(runs.ours);
      const res = JSON.parse(json) as { seconds: number; iterations: number; objectiveAfter: number; backend: string };
      let line = `  ${label}: rebasin ${ours.toFixed(2)} s (matching ${res.seconds.toFixed(2)} s in the worker, ${res.iterations} sweeps, objective ${res.objectiveAfter.toFixed(3)}, ${res.backend})`;
      if (python) {
        const py = median(runs.py);
        const p = JSON.parse(pyJson.trim().split('\n').pop() ?? '{}') as { ms: number; iterations: number; objective_after: number };
        line += `; numpy+scipy ${py.toFixed(2)} s (matching ${(p.ms / 1000).toFixed(2)} s, ${p.iterations} sweeps, objective ${p.objective_after.toFixed(3)}, writes no output); ratio rebasin/numpy ${(ours / py).toFixed(2)}`;
      } else {
        line += '; numpy baseline skipped (python3 with scipy not found)';
      }
      if (previous) {
        const prev = median(runs.prev);
        line += `; previous build ${prev.toFixed(2)} s, ratio rebasin/previous ${(ours / prev).toFixed(2)}`;
      }
      lines.push(line);
    }

    // Peak memory of aligning two large checkpoints: 784-4096-4096-4096-10 (~10M parameters each).
    const big = [784, 2048, 2048, 2048, 10];
    const bigA = path.join(dir, 'big-a.safetensors');
    const bigB = path.join(dir, 'big-b.safetensors');
    writeSafetensors(bigA, randomMlp(3, big));
    writeSafetensors(bigB, randomMlp(4, big));
    const inputMiB = (fs.statSync(bigA).size + fs.statSync(bigB).size) / 2 ** 20;
    const idle = peakRssMiB(process.execPath, [cli, 'inspect', bigA, '--json']);
    const t0 = process.hrtime.bigint();
    const peak = peakRssMiB(process.execPath, [cli, 'align', bigA, bigB, '--out', path.join(dir, 'big-out.safetensors'), '--backend', 'wasm', '--max-iter', '5', '--json']);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (peak !== undefined && idle !== undefined) {
      lines.push(`peak RSS aligning two ${big.join('-')} MLPs (${inputMiB.toFixed(0)} MiB of float32 inputs, 5 sweeps, ${secs.toFixed(1)} s): ${peak.toFixed(0)} MiB; CLI baseline (inspect) ${idle.toFixed(0)} MiB; ratio peak/inputs ${(peak / inputMiB).toFixed(2)}`);
    } else {
      lines.push('peak RSS skipped: /usr/bin/time not found');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}

if (require.main === module) {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  void benchAlignCli({ previousCli: process.argv[2] }).then((l) => console.log(l.join('\n')));
}
