/**
 * The barrier curve as the CLI and the extension run it: EngineClient aligns B to A, then
 * spreads the 25 lambdas of both paths over a pool of workers. Two 784-512-512-512-10 MLPs
 * (PyTorch-default init: the cost is the same as for trained ones) on the 10k MNIST test
 * images; one worker against the default pool (one per core), in the same run.
 *
 * Needs `npm run build` first. Run alone: node --import tsx bench/barrierPool.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mnistDataDir } from '../src/core/data';
import { EngineClient } from '../src/engine/client';
import { defaultWorkerCount } from '../src/engine/pool';
import type { BarrierResult } from '../src/engine/protocol';
import { randomMlp, writeSafetensors } from './matching';

const root = path.join(__dirname, '..');

async function timedBarrier(a: string, b: string, workers: number): Promise<{ seconds: number; result: BarrierResult }> {
  const client = EngineClient.start({ backend: 'auto', workers, workerScript: path.join(root, 'dist', 'worker.js') });
  try {
    await client.backend(); // worker start-up is not part of the curve's time
    const t0 = performance.now();
    const result = await client.request({
      kind: 'barrier', a, b, data: { path: mnistDataDir(), split: 'test' }, steps: 25, align: true, seed: 0, maxIter: 100,
    });
    return { seconds: (performance.now() - t0) / 1000, result };
  } finally {
    await client.dispose();
  }
}

export async function benchBarrierPool(): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-pool-'));
  try {
    const widths = [784, 512, 512, 512, 10];
    const a = path.join(dir, 'a.safetensors');
    const b = path.join(dir, 'b.safetensors');
    writeSafetensors(a, randomMlp(1, widths));
    writeSafetensors(b, randomMlp(2, widths));
    const pool = defaultWorkerCount();
    const one = await timedBarrier(a, b, 1);
    const many = await timedBarrier(a, b, pool);
    return [
      `barrier curve, ${widths.join('-')} MLPs, 10k MNIST test images, 25 lambdas, naive + aligned paths, backend ${many.result.backend}:`,
      `  1 worker: ${one.seconds.toFixed(1)} s; ${many.result.workers} workers: ${many.seconds.toFixed(1)} s; speed-up ${(one.seconds / many.seconds).toFixed(2)}x; goal 10 s: ${many.seconds <= 10 ? 'met' : 'not met'}`,
      `  barrier naive ${many.result.barrier.naive.toFixed(4)}, aligned ${many.result.barrier.aligned?.toFixed(4)} (untrained models: the numbers only show the curve was computed)`,
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void benchBarrierPool().then((l) => console.log(l.join('\n')));
