/**
 * `rebasin barrier --repair` (built CLI) on Llama (RoPE, GQA) and BERT (masked LM): A is the
 * fixture, B a seeded random perturbation of it written as a Hugging Face folder, token ids as
 * .npy. REPAIR runs on both paths and says on how many sequences it measured; at lambda = 0 and 1
 * it changes nothing (the loss equals the run without REPAIR), at the midpoint it changes the
 * model (another loss).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { mulberry32 } from '../../../src/core/matching/prng';
import type { BarrierResult } from '../../../src/engine/protocol';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { writeTokensNpy } from '../helpers/trainGpt2';

const FIXTURES = ['llama-tiny-gqa', 'bert-tiny'] as const;

let tmp: TmpDir;

/** The fixture's weights plus seeded noise of each tensor's RMS, as a folder with its config.json and tokenizer. */
async function perturbedFolder(name: string, out: string): Promise<void> {
  const dir = hfFixture(name);
  const ck = await openCheckpoint(path.join(dir, 'model.safetensors'));
  try {
    const rand = mulberry32(7);
    const data = new Map<string, Float32Array>();
    for (const t of ck.tensors) {
      const x = await ck.readFloat32(t.name);
      const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / Math.max(1, x.length)) || 1;
      data.set(t.name, Float32Array.from(x, (v) => v + rms * (2 * rand() - 1) * Math.sqrt(3)));
    }
    mkdirSync(out);
    const sources = ck.tensors.map((t) => {
      const x = data.get(t.name)!;
      return { name: t.name, dtype: 'F32', shape: t.shape, byteLength: x.byteLength, read: async () => new Uint8Array(x.buffer, x.byteOffset, x.byteLength) };
    });
    await writeSafetensors(path.join(out, 'model.safetensors'), sources, { metadata: { format: 'pt' } });
    copyFileSync(path.join(dir, 'config.json'), path.join(out, 'config.json'));
  } finally {
    await ck.close();
  }
}

before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-lm-repair-');
  for (const name of FIXTURES) {
    await perturbedFolder(name, tmp.file(`${name}-b`));
    const vocab = (JSON.parse(readFileSync(path.join(hfFixture(name), 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
    const rand = mulberry32(3);
    // Ids from 5 up: clear of BERT's mask id (4, given on the command line) and special tokens.
    writeTokensNpy(tmp.file(`${name}.npy`), Int32Array.from({ length: 8 * 16 }, () => 5 + Math.floor(rand() * (vocab - 5))), 8, 16);
  }
});
after(() => tmp?.remove());

for (const name of FIXTURES) {
  describe(`rebasin barrier --repair on ${name}`, () => {
    it('repairs the interior of both paths and leaves the endpoints alone', () => {
      const args = ['barrier', hfFixture(name), tmp.file(`${name}-b`), '--data', tmp.file(`${name}.npy`), '--steps', '3', '--workers', '1', '--backend', 'wasm', '--json', ...(name === 'bert-tiny' ? ['--mask-id', '4'] : [])];
      const plain = runCli(args);
      assert.equal(plain.code, 0, plain.stderr);
      const repaired = runCli([...args, '--repair']);
      assert.equal(repaired.code, 0, repaired.stderr);
      const p = JSON.parse(plain.stdout) as BarrierResult;
      const r = JSON.parse(repaired.stdout) as BarrierResult;
      assert.deepEqual(r.evaluation?.repair, { split: 'test', examples: 8 });
      assert.equal(p.evaluation?.repair, undefined);
      assert.deepEqual(r.lambdas, [0, 0.5, 1]);
      for (const curve of ['naive', 'aligned'] as const) {
        const lp = p[curve]!.loss;
        const lr = r[curve]!.loss;
        for (const i of [0, 2]) assert.ok(Math.abs(lr[i] - lp[i]) <= 1e-4 * Math.abs(lp[i]), `${curve} λ ${r.lambdas[i]}: ${lr[i]} vs ${lp[i]}`);
        assert.ok(Number.isFinite(lr[1]) && Math.abs(lr[1] - lp[1]) > 1e-5 * Math.abs(lp[1]), `${curve} midpoint: ${lr[1]} (repaired) vs ${lp[1]}`);
      }
    });
  });
}
