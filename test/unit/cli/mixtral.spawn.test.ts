/**
 * `rebasin align` and `rebasin barrier` (built CLI) on a Mixtral pair: A is the mixtral-tiny
 * fixture (transformers' folder: 4 experts, top 2, 2 KV groups), B is A under a known element of
 * its group (experts reordered per layer with the router's rows, each expert's units, KV groups,
 * query heads, v/o dimensions, the residual stream), written with A's tensor names. Align undoes
 * it exactly (π(B) is A bit for bit, under B's names and shapes) and says π(B) computes B's
 * function; the barrier on token ids runs the Mixtral forward pass: the aligned path is flat at
 * A's loss (π(B) is A, so every interpolation is A), its far end is B's function, the naive
 * midpoint is another model.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor } from '../../../src/core/checkpoint';
import { readHfConfig } from '../../../src/core/families/hfConfig';
import { applyPermutations, randomPermutations } from '../../../src/core/matching/permute';
import { stackExperts, unstackSources } from '../../../src/core/moe/expertStack';
import { openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import { inferSpec } from '../../../src/core/permspec';
import type { AlignResult, BarrierResult } from '../../../src/engine/protocol';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { writeTokensNpy } from '../helpers/trainGpt2';
import { mulberry32 } from '../../../src/core/matching/prng';

const A = hfFixture('mixtral-tiny');
const bytesOf = (x: Float32Array): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

let tmp: TmpDir;
before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-mixtral-');
  // B = A under a random group element, written as a folder with A's names (and A's config.json).
  const view = stackExperts(await openCheckpoint(path.join(A, 'model.safetensors')));
  try {
    const a = new Map<string, DenseTensor>();
    for (const t of view.tensors) a.set(t.name, { shape: t.shape, data: await view.readFloat32(t.name) });
    const { spec } = inferSpec(view.tensors, readHfConfig(path.join(A, 'model.safetensors')));
    const b = applyPermutations(spec, randomPermutations(spec, 6), a);
    mkdirSync(tmp.file('b'));
    const sources = view.tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, byteLength: t.byteLength, read: async () => bytesOf(b.get(t.name)!.data) }));
    await writeSafetensors(tmp.file('b/model.safetensors'), unstackSources(sources, view), { metadata: { format: 'pt' } });
    copyFileSync(path.join(A, 'config.json'), tmp.file('b/config.json'));
  } finally {
    await view.close();
  }
  const rand = mulberry32(3);
  writeTokensNpy(tmp.file('tokens.npy'), Int32Array.from({ length: 8 * 16 }, () => Math.floor(rand() * 320)), 8, 16);
});
after(() => tmp?.remove());

describe('rebasin on a Mixtral pair', () => {
  it('align recovers the known permutation exactly and writes π(B) with B\'s names and shapes', async () => {
    const out = tmp.file('aligned');
    const r = runCli(['align', A, tmp.file('b'), '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as AlignResult;
    assert.equal(json.equivalence?.ok, true, JSON.stringify(json.equivalence));
    assert.ok(Object.keys(json.perms).includes('P_model.layers.1.experts'), Object.keys(json.perms).join(', '));
    const [ca, cb, co] = await Promise.all([path.join(A, 'model.safetensors'), tmp.file('b/model.safetensors'), path.join(out, 'model.safetensors')].map((f) => openCheckpoint(f)));
    try {
      assert.deepEqual(co.tensors.map((t) => [t.name, t.shape]), cb.tensors.map((t) => [t.name, t.shape]));
      for (const t of ca.tensors) assert.deepEqual(await co.readRaw(t.name), await ca.readRaw(t.name), `${t.name} is A's again`);
    } finally {
      await Promise.all([ca, cb, co].map((c) => c.close()));
    }
  });

  it('spec and inspect name the experts: stacked tensors with a block axis per layer', () => {
    const r = runCli(['spec', A, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const file = JSON.parse(r.stdout) as { family: string; axes: Record<string, unknown> };
    assert.equal(file.family, 'transformer');
    assert.deepEqual(file.axes['model.layers.0.block_sparse_moe.experts.*.w2.weight'], ['P_residual', { parts: [{ split: [4, 96], perms: ['P_model.layers.0.experts', 'P_model.layers.0.expert_mlp'] }] }]);
    const inspected = runCli(['inspect', A]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /note: mixture of experts: the 4 experts of each layer permute/);
  });

  it('barrier --aligned takes the written π(B) as π(B) (checked to be one)', () => {
    const r = runCli(['barrier', A, tmp.file('b'), '--aligned', tmp.file('aligned'), '--data', tmp.file('tokens.npy'), '--steps', '2', '--workers', '1', '--backend', 'wasm', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as BarrierResult;
    assert.equal(out.alignedFrom?.source, 'checkpoint');
    assert.ok(out.aligned && Math.abs(out.aligned.loss[1] - out.aligned.loss[0]) <= 1e-6, JSON.stringify(out.aligned));
  });

  it('barrier on token ids runs the Mixtral forward pass: the aligned path is flat, its far end is B', () => {
    const r = runCli(['barrier', A, tmp.file('b'), '--data', tmp.file('tokens.npy'), '--steps', '3', '--workers', '1', '--backend', 'wasm', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as BarrierResult;
    assert.equal(out.lm?.objective, 'causal');
    assert.ok(out.aligned, 'an aligned path');
    const loss = out.naive.loss;
    // B computes A's function (a group element of A): both ends agree, the aligned path is A all along.
    assert.ok(Math.abs(loss[0] - loss[2]) <= 1e-4 * Math.abs(loss[0]), `A ${loss[0]} vs B ${loss[2]}`);
    for (const x of out.aligned.loss) assert.ok(Math.abs(x - loss[0]) <= 1e-4 * Math.abs(loss[0]), `aligned ${x} vs A ${loss[0]}`);
    assert.ok(out.barrier.aligned !== undefined && Math.abs(out.barrier.aligned) <= 1e-4, `aligned barrier ${out.barrier.aligned}`);
    // The naive midpoint is another model (random weights on random tokens: its loss is lower, not higher).
    assert.ok(Math.abs(loss[1] - loss[0]) > 1e-3, `naive midpoint ${loss[1]} vs A ${loss[0]}`);
  });
});

describe('rebasin barrier --method activation on a Mixtral pair', () => {
  it('matches experts and their units on the tokens: the aligned path is flat', () => {
    const r = runCli(['barrier', A, tmp.file('b'), '--data', tmp.file('tokens.npy'), '--steps', '3', '--workers', '1', '--backend', 'wasm', '--method', 'activation', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as BarrierResult;
    assert.equal(out.alignedFrom?.method, 'activation');
    assert.equal(out.align?.distance?.aligned, 0, 'π(B) is A');
    assert.ok(out.aligned);
    for (const x of out.aligned.loss) assert.ok(Math.abs(x - out.naive.loss[0]) <= 1e-4 * Math.abs(out.naive.loss[0]), `aligned ${x} vs A ${out.naive.loss[0]}`);
  });
});
