/**
 * The command line on a ViT pair (dist/cli.js): A is test/fixtures/hf/vit-tiny (written by
 * transformers, see its SOURCES.md), B the same network under a random element of its symmetry
 * group (residual stream, heads, q/k and v/o dimensions, MLP units), each a Hugging Face folder.
 * inspect names the family, align recovers A exactly (π(B) computes B's function), activation
 * matching on images recovers every group too (stream, heads, q/k and v/o dimensions, MLP units),
 * align --symmetry orthogonal aligns B' to A' (folded norms) on images, barrier evaluates both
 * paths with accuracy on N×C×H×W images (with weight or activation matching, and with REPAIR), and images of
 * another shape are refused in one line naming their file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { readHfConfig } from '../../../src/core/families';
import { applyPermutations, randomPermutations } from '../../../src/core/matching/permute';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { inferSpec } from '../../../src/core/permspec';
import { mulberry32 } from '../../../src/core/matching/prng';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { assertRefused, runCli as runCliWatched } from '../helpers/hostile';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
const FIXTURE = hfFixture('vit-tiny');

async function images(file: string, shape: readonly number[], n: number, pixel: (i: number) => number = (i) => Math.sin(i * 0.37)): Promise<void> {
  const size = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * size }, (_, i) => pixel(i));
  const y = new BigInt64Array(n).map((_, i) => BigInt(i % 10));
  await writeSafetensors(file, [
    { name: 'x', dtype: 'F32', shape: [n, ...shape], read: async () => encodeFromFloat32('F32', x) },
    { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
  ]);
}

before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-vit-cli-');
  for (const d of ['a', 'b']) {
    mkdirSync(tmp.file(d));
    copyFileSync(path.join(FIXTURE, 'config.json'), path.join(tmp.file(d), 'config.json'));
  }
  copyFileSync(path.join(FIXTURE, 'model.safetensors'), path.join(tmp.file('a'), 'model.safetensors'));
  const ckpt = await openCheckpoint(path.join(FIXTURE, 'model.safetensors'));
  try {
    const spec = inferSpec(ckpt.tensors, readHfConfig(ckpt.path)).spec;
    const a = new Map(await Promise.all(ckpt.tensors.map(async (t) => [t.name, { shape: t.shape, data: await ckpt.readFloat32(t.name) }] as const)));
    const b = applyPermutations(spec, randomPermutations(spec, 5), a);
    await writeSafetensors(path.join(tmp.file('b'), 'model.safetensors'), [...b].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })));
  } finally {
    await ckpt.close();
  }
  await images(tmp.file('images.safetensors'), [3, 32, 32], 24);
  await images(tmp.file('wide.safetensors'), [3, 16, 64], 4);
  // Random pixels for the orthogonal alignment: the stream must be seen in every direction for Procrustes to place it.
  const random = mulberry32(3);
  await images(tmp.file('noise.safetensors'), [3, 32, 32], 24, () => 2 * random() - 1);
});
after(() => tmp.remove());

describe('rebasin on a ViT pair (Hugging Face folders)', () => {
  it('inspect names the family and its permutation groups', () => {
    const r = runCli(['inspect', tmp.file('b'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const arch = (JSON.parse(r.stdout) as { architecture: { family: string; perms: Record<string, number> } }).architecture;
    assert.equal(arch.family, 'vit');
    assert.equal(arch.perms['P_vit.encoder.layer.1.heads'], 4);
    assert.equal(arch.perms['P_vit.encoder.layer.1.qk'], 64);
  });

  it('align recovers A exactly, and π(B) computes B\'s function', async () => {
    const out = tmp.file('aligned');
    const r = runCli(['align', tmp.file('a'), tmp.file('b'), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { family: string; distance: { naive: number; aligned: number }; equivalence: { ok: boolean } };
    assert.equal(json.family, 'vit');
    assert.ok(json.distance.naive > 1);
    assert.equal(json.distance.aligned, 0);
    assert.equal(json.equivalence.ok, true);
    const [got, want] = await Promise.all([openCheckpoint(path.join(out, 'model.safetensors')), openCheckpoint(path.join(tmp.file('a'), 'model.safetensors'))]);
    try {
      for (const t of want.tensors) assert.deepEqual(await got.readFloat32(t.name), await want.readFloat32(t.name), t.name);
    } finally {
      await Promise.all([got.close(), want.close()]);
    }
  });

  it('activation matching on images recovers every permutation weight matching finds: stream, heads, q/k, v/o, MLP units', () => {
    const perms = (method: string): Record<string, number[]> => {
      const r = runCli(['align', tmp.file('a'), tmp.file('b'), '--method', method, '--data', tmp.file('images.safetensors'), '--out', tmp.file(`by-${method}`), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(r.stdout) as { perms: Record<string, number[]>; equivalence: { ok: boolean } };
      assert.equal(json.equivalence.ok, true);
      return json.perms;
    };
    const exact = perms('weight');
    const byActivation = perms('activation');
    assert.equal(Object.keys(exact).length, 9);
    for (const name of Object.keys(exact)) assert.deepEqual(byActivation[name], exact[name], name);
    assert.notDeepEqual(byActivation['P_vit.encoder.layer.0.heads'], [0, 1, 2, 3]);
  });

  it('align --symmetry orthogonal on images: B\' (B\'s folder layout) and A\' beside it; B\' = A\' to float error (B is a group element of A)', async () => {
    const out = tmp.file('orthogonal');
    const r = runCli(['align', tmp.file('a'), tmp.file('b'), '--method', 'activation', '--data', tmp.file('noise.safetensors'), '--symmetry', 'orthogonal', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { family: string; symmetry: string; written: boolean; referenceFolded: string; equivalence: { ok: boolean }; orthogonal: { referenceEquivalence: { ok: boolean } } };
    assert.equal(json.family, 'vit');
    assert.equal(json.symmetry, 'orthogonal');
    assert.equal(json.written, true);
    assert.equal(json.equivalence.ok, true);
    assert.equal(json.orthogonal.referenceEquivalence.ok, true);
    assert.equal(json.referenceFolded, `${out}.a-folded`);
    const [bPrime, aPrime] = await Promise.all([openCheckpoint(path.join(out, 'model.safetensors')), openCheckpoint(path.join(json.referenceFolded, 'model.safetensors'))]);
    try {
      let worst = 0;
      for (const t of aPrime.tensors) {
        const [x, y] = await Promise.all([bPrime.readFloat32(t.name), aPrime.readFloat32(t.name)]);
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
      assert.ok(worst < 1e-4, `B' differs from A' by up to ${worst}`);
    } finally {
      await Promise.all([bPrime.close(), aPrime.close()]);
    }
  });

  it('barrier --aligned on that output evaluates the path from A\' to B\' (flat: B\' = A\')', () => {
    const r = runCli(['barrier', tmp.file('a'), tmp.file('b'), '--aligned', tmp.file('orthogonal'), '--data', tmp.file('images.safetensors'), '--steps', '3', '--workers', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { aligned: { loss: number[] }; barrier: { aligned: number }; alignedFrom: { symmetry?: string } };
    assert.equal(json.alignedFrom.symmetry, 'orthogonal');
    for (const l of json.aligned.loss) assert.ok(Math.abs(l - json.aligned.loss[0]) < 1e-4, `${json.aligned.loss}`);
    assert.ok(Math.abs(json.barrier.aligned) < 1e-4);
  });

  it('barrier evaluates both paths with accuracy on N×C×H×W images', () => {
    const r = runCli(['barrier', tmp.file('a'), tmp.file('b'), '--data', tmp.file('images.safetensors'), '--steps', '3', '--workers', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { lambdas: number[]; naive: { loss: number[]; acc: number[] }; aligned: { loss: number[]; acc: number[] }; barrier: { aligned: number } };
    assert.deepEqual(json.lambdas, [0, 0.5, 1]);
    for (const acc of [...json.naive.acc, ...json.aligned.acc]) assert.ok(acc >= 0 && acc <= 1);
    // π(B) is A: the aligned path stays at A's loss.
    for (const l of json.aligned.loss) assert.ok(Math.abs(l - json.aligned.loss[0]) < 1e-5, `${json.aligned.loss}`);
    assert.ok(Math.abs(json.barrier.aligned) < 1e-5);
  });

  it('barrier --method activation aligns B on the images and its aligned path stays at A', () => {
    const r = runCli(['barrier', tmp.file('a'), tmp.file('b'), '--method', 'activation', '--data', tmp.file('images.safetensors'), '--steps', '3', '--workers', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { aligned: { loss: number[]; acc: number[] }; barrier: { aligned: number } };
    for (const l of json.aligned.loss) assert.ok(Math.abs(l - json.aligned.loss[0]) < 1e-5, `${json.aligned.loss}`);
    assert.ok(Math.abs(json.barrier.aligned) < 1e-5);
  });

  it('barrier --repair evaluates both paths, its endpoints the models\' own losses', () => {
    const r = runCli(['barrier', tmp.file('a'), tmp.file('b'), '--data', tmp.file('images.safetensors'), '--steps', '3', '--workers', '1', '--repair', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { naive: { loss: number[] }; aligned: { loss: number[] }; evaluation: { repair: { split: string; examples: number } } };
    assert.deepEqual(json.evaluation.repair, { split: 'train', examples: 24 });
    // B computes A's function and π(B) is A: every endpoint, and the aligned path, is at A's loss.
    const own = json.aligned.loss[0];
    for (const l of [json.naive.loss[0], json.naive.loss[2], ...json.aligned.loss]) assert.ok(Math.abs(l - own) < 1e-5, `${json.naive.loss} / ${json.aligned.loss}`);
  });

  it('images of another shape are refused in one line naming their file', async () => {
    const r = await runCliWatched(['barrier', tmp.file('a'), tmp.file('b'), '--data', tmp.file('wide.safetensors'), '--steps', '3', '--workers', '1']);
    assertRefused(r, tmp.file('wide.safetensors'), /images are \[3, 16, 64\] but the model takes \[3, 32, 32\]/);
    const o = await runCliWatched(['align', tmp.file('a'), tmp.file('b'), '--method', 'activation', '--symmetry', 'orthogonal', '--data', tmp.file('wide.safetensors'), '--out', tmp.file('wide-out')]);
    assertRefused(o, tmp.file('wide.safetensors'), /images are \[3, 16, 64\] but the model takes \[3, 32, 32\]/);
  });
});
