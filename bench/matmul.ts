/**
 * C = A·Bᵀ for weight matching's cost matrices: the engine's tfjs product (`tfMatMul`, one
 * explicit transpose then matMul) on every backend that loads here, against core's plain-JS
 * `jsMatMul`. Prints GFLOP/s (2·m·k·n flops, best of several warm runs) and the ratio to JS.
 * Big cases are skipped when the previous case's speed says they would take too long.
 *
 * Run alone: node --import tsx bench/matmul.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import { jsMatMul } from '../src/core/matching/jsMatMul';
import type { MatMulABt } from '../src/core/checkpoint';
import { initBackend } from '../src/engine/backend';
import type { BackendName } from '../src/engine/protocol';
import { tfMatMul } from '../src/engine/tfMatMul';

interface Case {
  readonly label: string;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

/** Shapes weight matching meets: MNIST MLP first layer, hidden 512 layers, and a big hidden layer. */
const CASES: readonly Case[] = [
  { label: 'mlp layer 0 (512x784 . 784x512)', m: 512, k: 784, n: 512 },
  { label: 'mlp hidden (512x512 . 512x512)', m: 512, k: 512, n: 512 },
  { label: 'wide hidden (2048x2048 . 2048x2048)', m: 2048, k: 2048, n: 2048 },
  { label: 'wide hidden (4096x4096 . 4096x4096)', m: 4096, k: 4096, n: 4096 },
];

/** Longest single run we are willing to wait for (estimated from the last measured speed). */
const MAX_RUN_SECONDS = 6;
/** Time spent measuring each case (at least two runs). */
const MEASURE_SECONDS = 1.5;

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

async function bestSeconds(mm: MatMulABt, c: Case, a: Float32Array, b: Float32Array, estimate = 0): Promise<number> {
  // Long runs are measured once: the smaller cases before them already warmed JIT and kernels.
  if (estimate > MEASURE_SECONDS / 2) {
    const t0 = performance.now();
    await mm.abT(a, b, c.m, c.k, c.n);
    return (performance.now() - t0) / 1000;
  }
  await mm.abT(a, b, c.m, c.k, c.n); // warm-up (JIT, wasm pages, kernels)
  let best = Infinity;
  const until = performance.now() + MEASURE_SECONDS * 1000;
  for (let run = 0; run < 2 || (performance.now() < until && run < 20); run++) {
    const t0 = performance.now();
    await mm.abT(a, b, c.m, c.k, c.n);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** tfjs with transposeB=true, to show why tfMatMul transposes explicitly (slow on wasm). */
const transposeBFlag: MatMulABt = {
  abT(a, b, m, k, n) {
    const c = tf.tidy(() => tf.matMul(tf.tensor2d(a, [m, k]), tf.tensor2d(b, [n, k]), false, true));
    try {
      return c.dataSync() as Float32Array;
    } finally {
      c.dispose();
    }
  },
};

async function availableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await initBackend(name);
      out.push(name);
    } catch {
      // Not loadable on this machine (tfjs-node is optional).
    }
  }
  return out;
}

export async function benchMatmul(): Promise<string[]> {
  const lines: string[] = ['matmul C = A·Bᵀ (GFLOP/s, best of warm runs; ratio = speed / plain JS)'];
  const backends = await availableBackends();
  lines.push(`backends loadable here: ${backends.join(', ')}`);
  const gflops = (c: Case, s: number): number => (2 * c.m * c.k * c.n) / s / 1e9;
  const runners: { name: string; mm: MatMulABt; backend?: BackendName }[] = [
    { name: 'js', mm: jsMatMul },
    ...backends.map((b) => ({ name: `tfjs ${b}`, mm: tfMatMul, backend: b })),
  ];
  // A small probe per runner gives a first speed estimate, so hopeless cases are skipped at once.
  const lastSpeed = new Map<string, number>();
  const probe: Case = { label: 'probe', m: 128, k: 128, n: 128 };
  for (const r of runners) {
    if (r.backend) await initBackend(r.backend);
    lastSpeed.set(r.name, gflops(probe, await bestSeconds(r.mm, probe, randomMatrix(128, 128, 5), randomMatrix(128, 128, 6))));
  }
  for (const c of CASES) {
    const a = randomMatrix(c.m, c.k, 1);
    const b = randomMatrix(c.n, c.k, 2);
    const flops = 2 * c.m * c.k * c.n;
    let jsSpeed: number | undefined;
    const parts: string[] = [];
    for (const r of runners) {
      const prev = lastSpeed.get(r.name) ?? Infinity;
      const estimate = flops / (prev * 1e9);
      if (estimate > MAX_RUN_SECONDS) {
        parts.push(`${r.name} skipped (~${estimate.toFixed(0)} s per run)`);
        continue;
      }
      if (r.backend) await initBackend(r.backend);
      const speed = gflops(c, await bestSeconds(r.mm, c, a, b, estimate));
      lastSpeed.set(r.name, speed);
      if (r.name === 'js') jsSpeed = speed;
      parts.push(`${r.name} ${speed.toFixed(2)}${jsSpeed !== undefined && r.name !== 'js' ? ` (${(speed / jsSpeed).toFixed(1)}x)` : ''}`);
    }
    lines.push(`${c.label}: ${parts.join(', ')}`);
  }
  if (backends.includes('wasm')) {
    await initBackend('wasm');
    const c = CASES[1];
    const a = randomMatrix(c.m, c.k, 3);
    const b = randomMatrix(c.n, c.k, 4);
    const explicit = gflops(c, await bestSeconds(tfMatMul, c, a, b));
    const flag = gflops(c, await bestSeconds(transposeBFlag, c, a, b));
    lines.push(`wasm ${c.label}: matMul(a, transpose(b)) ${explicit.toFixed(2)} vs matMul(a, b, false, true) ${flag.toFixed(2)} (${(explicit / flag).toFixed(1)}x)`);
  }
  return lines;
}

if (require.main === module) {
  benchMatmul().then(
    (lines) => console.log(lines.join('\n')),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
