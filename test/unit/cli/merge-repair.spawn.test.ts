/**
 * `rebasin merge --repair` (issue 21 item 3, built CLI): the written checkpoint is the model
 * `barrier --repair` evaluates at that lambda, REPAIR folded into its weights. Its loss (evaluated
 * as a plain checkpoint) equals barrier --repair's aligned loss at lambda = 0.5 to 1e-4 and differs
 * from the plain merge's, on gpt2-tiny with token ids (also with B' from align --symmetry
 * orthogonal, merged with A'), on a pair of MLP classifiers and on vit-tiny with images (REPAIR of
 * each block's MLP units); the output holds the reference's
 * tensor names and shapes. --repair without --data, and with three inputs, is bad usage (one line);
 * --data without --repair is not read, and a warning says so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { mulberry32 } from '../../../src/core/matching/prng';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../src/core/safetensors';
import type { BarrierResult, MergeResult } from '../../../src/engine/protocol';
import { buildDist, runCli } from '../helpers/cli';
import { randomMlp, writeMlp } from '../helpers/engine-fixtures';
import { hfFixture } from '../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { writeTokensNpy } from '../helpers/trainGpt2';

let tmp: TmpDir;

/**
 * A fixture's weights plus seeded noise of `noise` x each tensor's RMS (seed `seed`), tensors named
 * by `gains` then multiplied by their gain, as a folder with the fixture's `files`.
 */
async function perturbed(fixture: string, out: string, files: readonly string[] = ['config.json', 'tokenizer.json'], noise = 1, seed = 7, gains: Readonly<Record<string, number>> = {}): Promise<void> {
  const dir = hfFixture(fixture);
  const ck = await openCheckpoint(path.join(dir, 'model.safetensors'));
  try {
    const rand = mulberry32(seed);
    const sources = [];
    for (const t of ck.tensors) {
      const x = await ck.readFloat32(t.name);
      const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / Math.max(1, x.length)) || 1;
      const gain = gains[t.name] ?? 1;
      const y = Float32Array.from(x, (v) => gain * (v + noise * rms * (2 * rand() - 1) * Math.sqrt(3)));
      sources.push({ name: t.name, dtype: 'F32', shape: t.shape, read: async () => encodeFromFloat32('F32', y) });
    }
    mkdirSync(out);
    await writeSafetensors(path.join(out, 'model.safetensors'), sources, { metadata: { format: 'pt' } });
    for (const f of files) copyFileSync(path.join(dir, f), path.join(out, f));
  } finally {
    await ck.close();
  }
}

/** The loss of checkpoint `m` on the data (lambda = 0 of the path from `m` to itself). */
function lossOf(m: string, data: readonly string[]): number {
  const r = runCli(['barrier', m, m, '--no-align', ...data, '--steps', '2', '--workers', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as BarrierResult).naive.loss[0];
}

/** Aligned loss at lambda = 0.5 of `barrier ARGS --repair` (3 steps: 0, 0.5, 1). */
function barrierMidpoint(args: readonly string[]): number {
  const r = runCli(['barrier', ...args, '--repair', '--steps', '3', '--workers', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout) as BarrierResult;
  assert.deepEqual(b.lambdas, [0, 0.5, 1]);
  return b.aligned!.loss[1];
}

function merge(args: readonly string[]): MergeResult {
  const r = runCli(['merge', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as MergeResult;
}

async function tensorShapes(file: string): Promise<string[]> {
  const ck = await openCheckpoint(file);
  try {
    return ck.tensors.map((t) => `${t.name}:${t.shape.join('x')}`).sort();
  } finally {
    await ck.close();
  }
}

/**
 * merge --repair of the folders A and B into folder `name` (checked, with A's tensor names and
 * shapes): its loss, equal to barrier --repair's at λ = 0.5 within 1e-4, and the plain merge's.
 */
async function repairedFolder(a: string, b: string, data: readonly string[], name: string): Promise<{ r: MergeResult; repaired: number; plain: number }> {
  const out = tmp.file(name);
  const r = merge([a, b, '--repair', ...data, '--out', out]);
  assert.equal(r.repair?.check.ok, true);
  assert.deepEqual(await tensorShapes(path.join(out, 'model.safetensors')), await tensorShapes(path.join(a, 'model.safetensors')));
  const repaired = lossOf(out, data);
  const expected = barrierMidpoint([a, b, ...data]);
  assert.ok(close(repaired, expected), `merge --repair ${repaired} vs barrier --repair ${expected}`);
  merge([a, b, '--out', tmp.file(`${name}-plain`)]);
  return { r, repaired, plain: lossOf(tmp.file(`${name}-plain`), data) };
}

const close = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-4 * Math.max(1, Math.abs(y));

before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-merge-repair-');
});
after(() => tmp?.remove());

describe('rebasin merge --repair', () => {
  it('gpt2-tiny: the written folder is barrier --repair\'s model at λ = 0.5, for B and for an orthogonal B\'', async () => {
    const a = hfFixture('gpt2-tiny');
    const b = tmp.file('b');
    await perturbed('gpt2-tiny', b);
    const ids = tmp.file('ids.npy');
    const rand = mulberry32(3);
    writeTokensNpy(ids, Int32Array.from({ length: 8 * 16 }, () => Math.floor(rand() * 100)), 8, 16);
    const data = ['--data', ids];

    const { r, repaired, plain } = await repairedFolder(a, b, data, 'merged');
    assert.equal(r.repair?.sites, 2, 'one site per block (the MLP units)');
    assert.equal(r.repair?.examples, 8);
    // The fixture's loss is near log(vocab); REPAIR moves it by about 1e-3 there.
    assert.ok(Math.abs(plain - repaired) > 1e-5 * plain, `REPAIR changed the merge: ${plain} (plain) vs ${repaired}`);

    // B' (untied head) from align --symmetry orthogonal: merged with A', as barrier --aligned evaluates it.
    const aligned = tmp.file('aligned');
    const al = runCli(['align', a, b, '--method', 'activation', '--symmetry', 'orthogonal', ...data, '--out', aligned]);
    assert.equal(al.code, 0, al.stderr);
    const out2 = tmp.file('merged-orth');
    const r2 = merge([a, aligned, '--repair', ...data, '--out', out2]);
    assert.equal(r2.referenceFolded, `${aligned}.a-folded`);
    assert.equal(r2.repair?.check.ok, true);
    const orth = lossOf(out2, data);
    const orthExpected = barrierMidpoint([a, b, '--aligned', aligned, ...data]);
    assert.ok(close(orth, orthExpected), `orthogonal: merge --repair ${orth} vs barrier --repair ${orthExpected}`);
  });

  it('MLP classifiers: the written file is barrier --repair\'s model at λ = 0.5', async () => {
    const widths = [8, 16, 12, 3];
    await writeMlp(tmp.file('a.safetensors'), randomMlp(widths, 1));
    await writeMlp(tmp.file('b.safetensors'), randomMlp(widths, 2));
    const n = 64;
    const x = Float32Array.from({ length: n * 8 }, (_, i) => Math.cos(i * 0.37) + Math.sin(i * 0.11));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 3));
    await writeSafetensors(tmp.file('data.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [n, 8], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
    const data = ['--data', tmp.file('data.safetensors')];
    const ends = [tmp.file('a.safetensors'), tmp.file('b.safetensors')];
    const r = merge([...ends, '--repair', ...data, '--out', tmp.file('m.safetensors')]);
    assert.deepEqual({ sites: r.repair?.sites, split: r.repair?.split, examples: r.repair?.examples, ok: r.repair?.check.ok }, { sites: 2, split: 'train', examples: n, ok: true });
    assert.deepEqual(await tensorShapes(tmp.file('m.safetensors')), await tensorShapes(ends[0]));
    const repaired = lossOf(tmp.file('m.safetensors'), data);
    const expected = barrierMidpoint([...ends, ...data]);
    assert.ok(close(repaired, expected), `merge --repair ${repaired} vs barrier --repair ${expected}`);
    merge([...ends, '--out', tmp.file('plain.safetensors')]);
    assert.ok(Math.abs(lossOf(tmp.file('plain.safetensors'), data) - repaired) > 1e-4, 'REPAIR changed the merge');
  });

  it('vit-tiny: the written folder is barrier --repair\'s model at λ = 0.5', async () => {
    // The fixture's logits are near zero (loss near log 10): a larger head makes the loss see REPAIR.
    const head = { 'classifier.weight': 30 };
    const a = tmp.file('vit-a');
    await perturbed('vit-tiny', a, ['config.json'], 0, 7, head);
    const b = tmp.file('vit-b');
    await perturbed('vit-tiny', b, ['config.json'], 0.5, 7, head);
    const n = 24;
    const x = Float32Array.from({ length: n * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
    const y = new BigInt64Array(n).map((_, i) => BigInt(i % 10));
    await writeSafetensors(tmp.file('images.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [n, 3, 32, 32], read: async () => encodeFromFloat32('F32', x) },
      { name: 'y', dtype: 'I64', shape: [n], read: async () => new Uint8Array(y.buffer) },
    ]);
    const data = ['--data', tmp.file('images.safetensors')];
    const { r, repaired, plain } = await repairedFolder(a, b, data, 'vit-merged');
    assert.deepEqual({ sites: r.repair?.sites, split: r.repair?.split, examples: r.repair?.examples }, { sites: 2, split: 'train', examples: n });
    assert.ok(Math.abs(plain - repaired) > 1e-4, `REPAIR changed the merge: ${plain} (plain) vs ${repaired}`);
  });

  it('--data without --repair: merged from the weights alone, with a one-line warning that --data was not read', async () => {
    const widths = [8, 16, 12, 3];
    await writeMlp(tmp.file('wa.safetensors'), randomMlp(widths, 3));
    await writeMlp(tmp.file('wb.safetensors'), randomMlp(widths, 4));
    const r = runCli(['merge', tmp.file('wa.safetensors'), tmp.file('wb.safetensors'), '--data', tmp.file('absent.safetensors'), '--out', tmp.file('w.safetensors')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: merge reads --data only with --repair/m);
    assert.deepEqual(await tensorShapes(tmp.file('w.safetensors')), await tensorShapes(tmp.file('wa.safetensors')));
  });

  it('--repair without --data, or with three inputs, is bad usage in one line', () => {
    const [a, b] = [tmp.file('a.safetensors'), tmp.file('b.safetensors')];
    for (const [args, says] of [
      [[a, b, '--repair'], /merge --repair needs --data PATH/],
      [[a, b, b, '--repair', '--data', tmp.file('data.safetensors')], /merge --repair takes two checkpoints/],
    ] as const) {
      const r = runCli(['merge', ...args, '--out', tmp.file('never.safetensors')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.split('\n')[0], says);
    }
  });
});
