/**
 * `npm run bench`: every benchmark, each printing its figures as ratios against a baseline
 * measured in the same run (scipy / munkres / numpy / plain JS / one worker / a small file).
 * `npm run bench -- inspect lap` runs only the named sections.
 */
import { benchAlignCli } from './alignCli';
import { benchAssignment } from './assignment';
import { benchBarrier } from './barrier';
import { benchBarrierPool } from './barrierPool';
import { benchInspect } from './inspect';
import { benchLm } from './lm';
import { benchMatching } from './matching';
import { benchMatmul } from './matmul';
import { initBackend } from '../src/engine/backend';
import { tfMatMul } from '../src/engine/tfMatMul';

const SECTIONS: Record<string, { title: string; run: () => Promise<string[]> }> = {
  inspect: { title: 'inspect: 10 GB sparse file vs a small file', run: () => benchInspect() },
  lap: { title: 'linear assignment vs scipy and munkres', run: () => benchAssignment() },
  matmul: { title: 'cost-matrix products per backend vs plain JS', run: () => benchMatmul() },
  matching: {
    title: 'weight matching in-process (plain JS and tfjs products) vs numpy+scipy',
    run: async () => [...(await benchMatching()), ...(await initBackend('auto').then((b) => benchMatching(tfMatMul, `tfjs ${b}`)))],
  },
  align: { title: 'end-to-end `rebasin align` vs numpy+scipy; peak memory of a large alignment', run: () => benchAlignCli() },
  pool: { title: 'barrier curve over the worker pool vs one worker', run: () => benchBarrierPool() },
  barrier: { title: 'barrier curve of trained MLPs in one thread (training included)', run: () => benchBarrier(true) },
  lm: { title: 'LM evaluation (GPT-2 shape): tokens/s and tfjs peak memory against the batch plan', run: () => benchLm() },
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in SECTIONS));
  if (unknown.length) {
    console.error(`unknown section(s): ${unknown.join(', ')}; sections: ${Object.keys(SECTIONS).join(', ')}`);
    process.exit(2);
  }
  const names = wanted.length ? wanted : Object.keys(SECTIONS);
  for (const name of names) {
    const { title, run } = SECTIONS[name];
    console.log(`\n== ${name}: ${title}`);
    const t0 = performance.now();
    try {
      for (const line of await run()) console.log(line);
    } catch (err) {
      console.log(`FAILED: ${(err as Error).stack ?? String(err)}`);
      process.exitCode = 1;
    }
    console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

void main();
