/**
 * wasm against native `tensorflow`, side by side in one run, as ratios (native time / wasm
 * time; below 1 means native is faster): cost-matrix products (C = A·Bᵀ) at several sizes,
 * weight matching of two 784-512-512-512-10 MLPs in this thread, `rebasin align` end to end
 * (a CLI process each, `--backend wasm|tensorflow`), and the 25-λ barrier curve (both paths,
 * 10k MNIST test images, one worker per core).
 *
 * The native backend is tfjs-node from node_modules when it is installed there, else the build
 * of `npm run native:build` (made on demand into its cache outside the clone, then named by
 * REBASIN_TFJS_NODE for this section only). When neither is possible, prints why and measures
 * wasm alone.
 *
 * Needs `npm run build` first (bench/run.ts does it). Run alone: node --import tsx bench/native.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mnistDataDir } from '../src/core/data';
import { weightMatching } from '../src/core/matching/weightMatching';
import { initBackend } from '../src/engine/backend';
import { EngineClient } from '../src/engine/client';
import { defaultWorkerCount } from '../src/engine/pool';
import type { BackendName } from '../src/engine/protocol';
import { tfMatMul } from '../src/engine/tfMatMul';
import { mlpSpec, randomMlp, writeSafetensors } from './matching';

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
const workerScript = path.join(root, 'dist', 'worker.js');
const WIDTHS = [784, 512, 512, 512, 10];

/** Makes the native backend loadable in this process and its children; returns why not, if not. */
export function provideNative(): { ok: true; how: string } | { ok: false; why: string } {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return { ok: true, how: '@tensorflow/tfjs-node from node_modules' };
  } catch {
    // Not installed (its install cannot download libtensorflow here): use or make the cached build.
  }
  if (process.env.REBASIN_TFJS_NODE) return { ok: true, how: `REBASIN_TFJS_NODE=${process.env.REBASIN_TFJS_NODE}` };
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'native-build.mjs'), '--print-dir'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) return { ok: false, why: 'npm run native:build failed (its reason is printed above)' };
  process.env.REBASIN_TFJS_NODE = r.stdout.trim();
  return { ok: true, how: `the native:build cache (${process.env.REBASIN_TFJS_NODE})` };
}

/**
 * Runs `section` with the native backend made loadable (provideNative), then restores
 * REBASIN_TFJS_NODE: other sections measure what `auto` picks without it.
 */
export async function withNative<T>(section: (native: ReturnType<typeof provideNative>) => Promise<T>): Promise<T> {
  const before = process.env.REBASIN_TFJS_NODE;
  try {
    return await section(provideNative());
  } finally {
    if (before === undefined) delete process.env.REBASIN_TFJS_NODE;
    else process.env.REBASIN_TFJS_NODE = before;
  }
}

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/** Best wall seconds of `runs` calls after one warm-up call. */
async function bestOf(runs: number, f: () => unknown): Promise<number> {
  await f();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

const ratio = (native: number | undefined, wasm: number): string => (native === undefined ? 'native n/a' : `native/wasm ${(native / wasm).toFixed(2)}`);

async function matmulRows(backends: readonly BackendName[]): Promise<string[]> {
  const lines = ['C = A·Bᵀ (GFLOP/s, best of warm runs):'];
  for (const [m, k, n, runs] of [[512, 784, 512, 5], [512, 512, 512, 5], [2048, 2048, 2048, 2], [4096, 4096, 4096, 1]]) {
    const a = randomMatrix(m, k, 1);
    const b = randomMatrix(n, k, 2);
    const secs = new Map<BackendName, number>();
    for (const backend of backends) {
      await initBackend(backend);
      secs.set(backend, await bestOf(runs, () => tfMatMul.abT(a, b, m, k, n)));
    }
    const gf = (s: number): string => ((2 * m * k * n) / s / 1e9).toFixed(1);
    const wasm = secs.get('wasm')!;
    const native = secs.get('tensorflow');
    lines.push(`  ${m}x${k} · ${k}x${n}: wasm ${gf(wasm)}, native ${native === undefined ? 'n/a' : gf(native)}; time ${ratio(native, wasm)}`);
  }
  return lines;
}

async function matchingRow(backends: readonly BackendName[]): Promise<string> {
  const spec = mlpSpec(WIDTHS);
  const [a, b] = [randomMlp(1, WIDTHS), randomMlp(2, WIDTHS)];
  const parts: string[] = [];
  const secs = new Map<BackendName, number>();
  for (const backend of backends) {
    await initBackend(backend);
    await weightMatching(spec, a, b, { seed: 0, maxIter: 2, matmul: tfMatMul }); // warm kernels
    const t0 = performance.now();
    const r = await weightMatching(spec, a, b, { seed: 0, maxIter: 100, matmul: tfMatMul });
    secs.set(backend, (performance.now() - t0) / 1000);
    parts.push(`${backend} ${secs.get(backend)!.toFixed(2)} s (${r.iterations} sweeps, objective ${r.objectiveAfter.toFixed(3)})`);
  }
  return `weight matching in one thread, two ${WIDTHS.join('-')} MLPs: ${parts.join(', ')}; time ${ratio(secs.get('tensorflow'), secs.get('wasm')!)}`;
}

function alignRow(dir: string, backends: readonly BackendName[]): string {
  const a = path.join(dir, 'a.safetensors');
  const b = path.join(dir, 'b.safetensors');
  const out = path.join(dir, 'out.safetensors');
  const parts: string[] = [];
  const secs = new Map<BackendName, number>();
  for (const backend of backends) {
    let best = Infinity;
    let matching = 0;
    for (let i = 0; i < 3; i++) {
      fs.rmSync(out, { force: true });
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [cli, 'align', a, b, '--out', out, '--json', '--backend', backend], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const s = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`rebasin align --backend ${backend} failed: ${r.stderr.trim().split('\n').pop()}`);
      if (s < best) {
        best = s;
        matching = (JSON.parse(r.stdout) as { seconds: number }).seconds;
      }
    }
    secs.set(backend, best);
    parts.push(`${backend} ${best.toFixed(2)} s (matching ${matching.toFixed(2)} s)`);
  }
  return `\`rebasin align\` end to end (process start to written output, best of 3): ${parts.join(', ')}; time ${ratio(secs.get('tensorflow'), secs.get('wasm')!)}`;
}

async function barrierRow(dir: string, backends: readonly BackendName[]): Promise<string> {
  const parts: string[] = [];
  const secs = new Map<BackendName, number>();
  const workers = defaultWorkerCount();
  for (const backend of backends) {
    const client = EngineClient.start({ backend, workers, workerScript });
    try {
      await client.backend(); // worker start-up (loading the library) is not part of the curve
      const t0 = performance.now();
      const r = await client.request({
        kind: 'barrier', a: path.join(dir, 'a.safetensors'), b: path.join(dir, 'b.safetensors'),
        data: { path: mnistDataDir(), split: 'test' }, steps: 25, align: true, seed: 0, maxIter: 100,
      });
      secs.set(backend, (performance.now() - t0) / 1000);
      parts.push(`${backend} ${secs.get(backend)!.toFixed(1)} s (barrier naive ${r.barrier.naive.toFixed(4)}, aligned ${r.barrier.aligned?.toFixed(4)})`);
    } finally {
      await client.dispose();
    }
  }
  return `barrier curve, 25 λ, both paths, 10k MNIST, ${workers} workers: ${parts.join(', ')}; time ${ratio(secs.get('tensorflow'), secs.get('wasm')!)}`;
}

export function benchNative(): Promise<string[]> {
  return withNative(async (native) => {
    const backends: BackendName[] = native.ok ? ['wasm', 'tensorflow'] : ['wasm'];
    const lines = [native.ok ? `native backend: ${native.how}` : `native backend unavailable, wasm only: ${native.why}`];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-native-'));
    try {
      writeSafetensors(path.join(dir, 'a.safetensors'), randomMlp(1, WIDTHS));
      writeSafetensors(path.join(dir, 'b.safetensors'), randomMlp(2, WIDTHS));
      lines.push(...(await matmulRows(backends)));
      lines.push(await matchingRow(backends));
      lines.push(alignRow(dir, backends));
      lines.push(await barrierRow(dir, backends));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return lines;
  });
}

if (require.main === module) {
  benchNative().then(
    (lines) => console.log(lines.join('\n')),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
