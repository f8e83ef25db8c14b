/**
 * Orthogonal Procrustes (src/core/linalg): the eigendecomposition path `procrustes` on random
 * d x d float64 matrices, as a ratio to numpy's SVD (R = U V^T, OpenBLAS) in the same run when
 * python3 with numpy is there, and to the one-sided Jacobi reference `procrustesByJacobi` for
 * d <= 768. Also prints the orthogonality error and the objective's gap to numpy's.
 * d = 64 .. 2048 by default; `--max-d 4096` adds d = 4096 (minutes in plain JS).
 *
 * Run alone: npm run bench -- procrustes [--max-d 4096]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { procrustes, procrustesByJacobi } from '../src/core/linalg';
import { mulberry32 } from '../src/core/matching/prng';

const SIZES = [64, 256, 768, 1024, 2048, 4096];
const JACOBI_MAX = 768;

function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The environment without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: set on this machine for old OpenBLAS builds, they slow a current numpy. */
function numpyEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function objective(r: Float64Array, m: Float64Array): number {
  let acc = 0;
  for (let i = 0; i < m.length; i++) acc += r[i] * m[i];
  return acc;
}

function orthogonalityError(r: Float64Array, d: number): number {
  let worst = 0;
  // R^T R - I on a sample of column pairs (the full check is itself O(d^3)).
  const step = Math.max(1, Math.floor(d / 64));
  for (let i = 0; i < d; i += step) {
    for (let j = 0; j < d; j += step) {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += r[k * d + i] * r[k * d + j];
      worst = Math.max(worst, Math.abs(acc - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

function timed<T>(run: () => T, repeats: number): { seconds: number; value: T } {
  let value = run();
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    value = run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return { seconds: best, value };
}

export async function benchProcrustes(maxD = 2048): Promise<string[]> {
  const numpy = hasNumpy();
  if (!numpy) console.log('numpy baseline skipped: python3 with numpy not found');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-procrustes-'));
  try {
    for (const d of SIZES.filter((x) => x <= maxD)) {
      const random = mulberry32(d);
      const m = Float64Array.from({ length: d * d }, () => random() * 2 - 1);
      const repeats = d <= 256 ? 5 : 1;
      // Small sizes are timed warm (after one untimed run); large ones once, cold.
      const fast = d <= 256 ? timed(() => procrustes(m, d), repeats) : (() => {
        const t0 = performance.now();
        const value = procrustes(m, d);
        return { seconds: (performance.now() - t0) / 1000, value };
      })();
      let line = `d=${d}: eigen path ${fast.seconds.toFixed(3)} s, orthogonality ${orthogonalityError(fast.value, d).toExponential(1)}`;
      if (numpy) {
        const file = path.join(dir, `m${d}.f64`);
        fs.writeFileSync(file, Buffer.from(m.buffer));
        const out = JSON.parse(execFileSync('python3', [path.join(__dirname, 'numpy_procrustes.py'), file, String(d), String(repeats)], { encoding: 'utf8', env: numpyEnv() })) as { seconds: number; objective: number; blas: string };
        const gap = Math.abs(objective(fast.value, m) - out.objective) / Math.abs(out.objective);
        line += `; numpy svd ${out.seconds.toFixed(3)} s (${out.blas}): ratio ${(fast.seconds / out.seconds).toFixed(1)}x, objective gap ${gap.toExponential(1)}`;
        fs.rmSync(file);
      }
      if (d <= JACOBI_MAX) {
        const t0 = performance.now();
        const reference = procrustesByJacobi(m, d);
        const jacobi = (performance.now() - t0) / 1000;
        const gap = Math.abs(objective(fast.value, m) - objective(reference, m)) / Math.abs(objective(reference, m));
        line += `; Jacobi ${jacobi.toFixed(3)} s: ${(jacobi / fast.seconds).toFixed(1)}x faster, objective gap ${gap.toExponential(1)}`;
      }
      // Printed as soon as measured (d = 4096 takes minutes), not only at the end of the section.
      console.log(line);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return [`load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores (shared machine: other work inflates these times)`];
}
