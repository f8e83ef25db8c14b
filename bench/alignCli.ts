/**
 * End to end, as a user runs it: `node dist/cli.js align A B --out OUT` on two
 * 784-512-512-512-10 MLPs, against a numpy+scipy script doing the same matching
 * (bench/numpy_matching.py, wall time of the whole process: start, load, match). Also the
 * peak resident memory of aligning two large checkpoints (GNU time's max RSS of the CLI
 * process, worker threads included) against the size of the inputs.
 *
 * Needs `npm run build` first (bench/run.ts does it). Run alone: node --import tsx bench/alignCli.ts
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasScipy, mlpSpec, noisyPermutedCopy, randomMlp, writeSafetensors } from './matching';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');

function wallSeconds(cmd: string, args: readonly string[]): { seconds: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

function best(n: number, run: () => number): number {
  let m = Infinity;
  for (let i = 0; i < n; i++) m = Math.min(m, run());
  return m;
}

/** Max RSS in MiB of a command, from GNU time (`/usr/bin/time -f %M`, KiB). */
function peakRssMiB(cmd: string, args: readonly string[]): number | undefined {
  if (!fs.existsSync('/usr/bin/time')) return undefined;
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /MAXRSS (\d+)/.exec(r.stderr);
  return m ? Number(m[1]) / 1024 : undefined;
}

export async function benchAlignCli(): Promise<string[]> {
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
    lines.push(`end-to-end align of two ${widths.join('-')} MLPs (wall time of the whole command, best of 3)`);
    for (const [label, b] of pairs) {
      const bFile = path.join(dir, `b-${label.replace(/\W+/g, '-')}.safetensors`);
      writeSafetensors(bFile, b);
      const out = path.join(dir, 'out.safetensors');
      let json = '';
      const ours = best(3, () => {
        fs.rmSync(out, { force: true });
        const r = wallSeconds(process.execPath, [cli, 'align', path.join(dir, 'a.safetensors'), bFile, '--out', out, '--json', '--backend', 'wasm']);
        json = r.stdout;
        return r.seconds;
      });
      const res = JSON.parse(json) as { seconds: number; iterations: number; objectiveAfter: number; backend: string };
      let line = `  ${label}: rebasin ${ours.toFixed(2)} s (matching ${res.seconds.toFixed(2)} s in the worker, ${res.iterations} sweeps, objective ${res.objectiveAfter.toFixed(3)}, ${res.backend})`;
      if (python) {
        let pyJson = '';
        const py = best(3, () => {
          const r = wallSeconds('python3', [path.join(__dirname, 'numpy_matching.py'), path.join(dir, 'spec.json'), path.join(dir, 'a.safetensors'), bFile, '0', '100']);
          pyJson = r.stdout;
          return r.seconds;
        });
        const p = JSON.parse(pyJson.trim().split('\n').pop() ?? '{}') as { ms: number; iterations: number; objective_after: number };
        line += `; numpy+scipy ${py.toFixed(2)} s (matching ${(p.ms / 1000).toFixed(2)} s, ${p.iterations} sweeps, objective ${p.objective_after.toFixed(3)}, writes no output); ratio rebasin/numpy ${(ours / py).toFixed(2)}`;
      } else {
        line += '; numpy baseline skipped (python3 with scipy not found)';
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
  void benchAlignCli().then((l) => console.log(l.join('\n')));
}
