/**
 * The barrier curve as the CLI and the extension run it: EngineClient aligns B to A, then
 * spreads the 25 lambdas of both paths over a pool of workers. Two 784-512-512-512-10 MLPs
 * (PyTorch-default init: the cost is the same as for trained ones) on the 10k MNIST test
 * images; one worker against the default pool (one per core), in the same run.
 *
 * With `--previous PATH` (issue 24) the CLI as a user runs it, `node dist/cli.js barrier A B --data
 * MNIST --json` (wasm, default pool), is timed against a previous build's dist/cli.js, alternating
 * for 3 rounds so a change of load falls on both: wall times, their ratio and the largest loss
 * difference.
 *
 * Needs `npm run build` first. Run alone: node --import tsx bench/barrierPool.ts [PREVIOUS_CLI]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mnistDataDir } from '../src/core/data';
import { EngineClient } from '../src/engine/client';
import { defaultWorkerCount } from '../src/engine/pool';
import type { BarrierResult } from '../src/engine/protocol';
import { randomMlp, writeSafetensors } from './matching';
import { maxDiff, timedCliBarrier } from './lmBarrier';

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

/** Our CLI against a previous build's, alternating rounds; the median of each. */
function cliRounds(a: string, b: string, previousCli: string): string[] {
  const args = [a, b, '--data', mnistDataDir(), '--backend', 'wasm'];
  const ours: number[] = [];
  const prev: number[] = [];
  const loads: number[] = [];
  let diff = 0;
  for (let round = 0; round < 3; round++) {
    const o = timedCliBarrier(path.join(root, 'dist', 'cli.js'), args);
    const p = timedCliBarrier(path.resolve(previousCli), args);
    ours.push(o.seconds);
    prev.push(p.seconds);
    loads.push(o.load, p.load);
    diff = Math.max(diff, maxDiff(o.losses, p.losses));
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const s = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(', ');
  return [
    `  \`rebasin barrier A B --data MNIST --backend wasm\` end to end (CLI process, default pool), 3 alternating rounds, load ${Math.min(...loads).toFixed(1)} to ${Math.max(...loads).toFixed(1)}:`,
    `    this build ${s(ours)} s; previous ${s(prev)} s; ratio of medians ${(median(ours) / median(prev)).toFixed(2)}; largest loss difference ${diff.toExponential(1)}`,
  ];
}

export async function benchBarrierPool(previousCli?: string): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebasin-bench-pool-'));
  try {
    const widths = [784, 512, 512, 512, 10];
    const a = path.join(dir, 'a.safetensors');
    const b = path.join(dir, 'b.safetensors');
    writeSafetensors(a, randomMlp(1, widths));
    writeSafetensors(b, randomMlp(2, widths));
    if (previousCli) return cliRounds(a, b, previousCli);
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

if (require.main === module) void benchBarrierPool(process.argv[2]).then((l) => console.log(l.join('\n')));
