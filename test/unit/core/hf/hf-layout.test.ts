/**
 * Hugging Face layout out (src/core/hf/layout.ts, src/core/safetensors/shardedWriter.ts): aligning
 * or merging a Hugging Face folder writes a folder `transformers` can load, checked against the
 * documented format (safetensors files with `__metadata__.format = "pt"`; a sharded checkpoint's
 * `model.safetensors.index.json` = {metadata: {total_size}, weight_map: {tensor: shard file}}),
 * and our LM forward pass on the output reproduces the logits `transformers` computed for the
 * input (an alignment of a model with itself is the identity). Atomicity: a cancel or a failing
 * tensor mid-write leaves nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { locateCheckpoint, writeCheckpointOutput } from '../../../../src/core/hf/layout';
import { openCheckpoint, openSafetensors, SafetensorsError, type TensorSource } from '../../../../src/core/safetensors';
import { OUTPUT_MANIFEST, removeOwnTemps, removeStaleTempFolders, writeCheckpointFolder } from '../../../../src/core/safetensors/shardedWriter';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import { mergeHandler } from '../../../../src/engine/handlers/merge';
import { loadLmCheckpoint } from '../../../../src/engine/lm/checkpoint';
import { buildLm } from '../../../../src/engine/lm/model';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-hf-');
});
after(() => tmp.remove());

const ctx = (signal = new AbortController().signal): HandlerContext => ({ signal, onProgress: () => undefined, log: () => undefined });

/** A writable copy of a shared fixture folder (the shared ones are read-only). */
async function copyFixture(name: string, as: string): Promise<string> {
  const dir = tmp.file(as);
  await cp(hfFixture(name), dir, { recursive: true });
  return dir;
}

async function referenceLogits(dir: string): Promise<{ ids: Int32Array; logits: Float32Array; shape: number[] }> {
  const ck = await openCheckpoint(path.join(dir, 'reference_logits.safetensors'));
  try {
    return { ids: Int32Array.from(await ck.readFloat32('input_ids')), logits: await ck.readFloat32('logits'), shape: [...ck.get('logits')!.shape] };
  } finally {
    await ck.close();
  }
}

/** Our forward pass on the folder `dir` against the logits transformers computed for `fixture`. */
async function assertReproducesLogits(dir: string, fixture: string): Promise<void> {
  const ref = await referenceLogits(hfFixture(fixture));
  const lm = await loadLmCheckpoint(dir);
  const model = buildLm(lm.tensors, lm.config, lm.paths.weights);
  try {
    const [n, s] = ref.shape;
    const got = tf.tidy(() => model.logits(tf.tensor2d(ref.ids, [n, s], 'int32')).dataSync());
    const scale = ref.logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref.logits[i]));
    assert.ok(worst < 1e-4 * Math.max(1, scale), `largest logit difference ${worst}`);
  } finally {
    model.dispose();
  }
}

async function rawTensors(weights: string): Promise<Map<string, { dtype: string; shape: readonly number[]; bytes: Uint8Array }>> {
  const ck = await openCheckpoint(weights);
  try {
    const out = new Map<string, { dtype: string; shape: readonly number[]; bytes: Uint8Array }>();
    for (const t of ck.tensors) out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: (await ck.readRaw(t.name)).slice() });
    return out;
  } finally {
    await ck.close();
  }
}

const alignRequest = (a: string, b: string, out: string) => ({ kind: 'align' as const, a, b, out, method: 'weight' as const, seed: 0, maxIter: 20 });

describe('Hugging Face folder out', () => {
  it('align of a GPT-2 folder with itself writes a folder: weights, config, generation config and tokenizer; same logits', async () => {
    const a = await copyFixture('gpt2-tiny', 'gpt2-a');
    const b = await copyFixture('gpt2-tiny', 'gpt2-b');
    const out = tmp.file('gpt2-aligned');
    const r = await alignHandler(alignRequest(a, b, out), ctx());
    assert.equal(r.out, out);
    assert.deepEqual((await readdir(out)).sort(), ['.rebasin-output.json', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json']) {
      assert.deepEqual(await readFile(path.join(out, f)), await readFile(path.join(b, f)), f);
    }
    const file = await openSafetensors(path.join(out, 'model.safetensors'));
    try {
      assert.equal(file.metadata.format, 'pt');
      assert.equal(file.metadata['rebasin.align.method'], 'weight');
    } finally {
      await file.close();
    }
    await assertReproducesLogits(out, 'gpt2-tiny');
    // Nothing else beside the output: the temporary folder was renamed into place.
    assert.deepEqual((await readdir(tmp.path)).filter((f) => f.startsWith('.')), []);
  });

  it('a sharded Llama (named by its index) comes out with the same shard plan, index total_size recomputed, same tensors and logits', async () => {
    const a = await copyFixture('llama-tiny-gqa-sharded', 'llama-sh-a');
    const b = await copyFixture('llama-tiny-gqa-sharded', 'llama-sh-b');
    const out = tmp.file('llama-sh-aligned');
    const messages: string[] = [];
    await alignHandler(alignRequest(path.join(a, 'model.safetensors.index.json'), path.join(b, 'model.safetensors.index.json'), out), {
      ...ctx(),
      onProgress: (p) => messages.push(p.message ?? ''),
    });
    assert.ok(messages.includes('Writing π(B): shard 1 of 10') && messages.includes('Writing π(B): shard 10 of 10'), messages.join('; '));
    const inIndex = JSON.parse(await readFile(path.join(b, 'model.safetensors.index.json'), 'utf8')) as { metadata: Record<string, number>; weight_map: Record<string, string> };
    const outIndex = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as typeof inIndex;
    assert.deepEqual(outIndex.weight_map, inIndex.weight_map);
    assert.deepEqual(Object.keys(outIndex).sort(), ['metadata', 'weight_map']);
    const shards = [...new Set(Object.values(inIndex.weight_map))].sort();
    assert.deepEqual((await readdir(out)).sort(), [...shards, '.rebasin-output.json', 'config.json', 'generation_config.json', 'model.safetensors.index.json', 'tokenizer.json'].sort());
    const written = await rawTensors(path.join(out, 'model.safetensors.index.json'));
    assert.equal(outIndex.metadata.total_size, [...written.values()].reduce((s, t) => s + t.bytes.length, 0));
    assert.equal(outIndex.metadata.total_size, inIndex.metadata.total_size);
    assert.equal(outIndex.metadata.total_parameters, inIndex.metadata.total_parameters);
    for (const shard of shards) {
      const f = await openSafetensors(path.join(out, shard));
      try {
        assert.equal(f.metadata.format, 'pt', shard);
        assert.deepEqual(f.tensors.map((t) => t.name).sort(), Object.keys(inIndex.weight_map).filter((k) => inIndex.weight_map[k] === shard).sort(), shard);
      } finally {
        await f.close();
      }
    }
    const original = await rawTensors(path.join(b, 'model.safetensors.index.json'));
    assert.deepEqual([...written.keys()].sort(), [...original.keys()].sort());
    for (const [name, t] of original) assert.deepEqual(written.get(name), t, name);
    await assertReproducesLogits(out, 'llama-tiny-gqa-sharded');
  });

  it('a folder named by its model.safetensors: folder out unless --out ends in .safetensors (one file, as before)', async () => {
    const a = await copyFixture('llama-tiny-gqa', 'llama-a');
    const b = await copyFixture('llama-tiny-gqa', 'llama-b');
    const outDir = tmp.file('llama-aligned');
    await alignHandler(alignRequest(path.join(a, 'model.safetensors'), path.join(b, 'model.safetensors'), outDir), ctx());
    assert.ok(existsSync(path.join(outDir, 'model.safetensors')) && existsSync(path.join(outDir, 'config.json')));
    await assertReproducesLogits(outDir, 'llama-tiny-gqa');
    const outFile = tmp.file('llama-aligned.safetensors');
    await alignHandler(alignRequest(a, b, outFile), ctx());
    assert.deepEqual(await rawTensors(outFile), await rawTensors(path.join(b, 'model.safetensors')));
  });

  it('merge of two Llama folders writes a folder in the reference layout', async () => {
    const a = await copyFixture('llama-tiny-gqa-sharded', 'merge-a');
    const b = await copyFixture('llama-tiny-gqa-sharded', 'merge-b');
    const out = tmp.file('merged');
    await mergeHandler({ kind: 'merge', inputs: [a, b], out, lambda: 0.5, align: true, seed: 0, maxIter: 20 }, ctx());
    assert.ok(existsSync(path.join(out, 'model.safetensors.index.json')));
    assert.ok(existsSync(path.join(out, 'model-00010-of-00010.safetensors')));
    await assertReproducesLogits(out, 'llama-tiny-gqa-sharded');
  });

  it('refuses to write into an input folder or a non-empty folder it did not write; replaces its own earlier output', async () => {
    const a = await copyFixture('gpt2-tiny', 'refuse-a');
    const b = await copyFixture('gpt2-tiny', 'refuse-b');
    await assert.rejects(alignHandler(alignRequest(a, b, b), ctx()), /refusing to write over an input/);
    await assert.rejects(alignHandler(alignRequest(path.join(a, 'model.safetensors'), path.join(b, 'model.safetensors'), b), ctx()), /refusing to write over an input/);
    const foreign = tmp.file('foreign');
    await mkdir(foreign);
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    await assert.rejects(alignHandler(alignRequest(a, b, foreign), ctx()), /not empty and was not written by Re-Basin/);
    assert.deepEqual(await readdir(foreign), ['notes.txt']);
    const empty = tmp.file('empty');
    await mkdir(empty);
    await alignHandler(alignRequest(a, b, empty), ctx());
    assert.ok(existsSync(path.join(empty, 'model.safetensors')));
    await alignHandler(alignRequest(a, b, empty), ctx());
    assert.deepEqual((await readdir(empty)).sort(), ['.rebasin-output.json', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    assert.deepEqual((await readdir(tmp.path)).filter((f) => f.startsWith('.')), []);
  });
});

describe('sharded folder writer: atomic', () => {
  const tensor = (name: string, value: number, read?: () => Promise<Uint8Array>): TensorSource => ({
    name,
    dtype: 'F32',
    shape: [4],
    read: read ?? (async () => new Uint8Array(new Float32Array(4).fill(value).buffer)),
  });

  it('a cancel mid-write (second shard) leaves nothing, not even a temporary folder', async () => {
    const parent = tmp.file('abort');
    await mkdir(parent);
    const controller = new AbortController();
    const shards = [
      { file: 'model-00001-of-00002.safetensors', tensors: [tensor('a', 1)] },
      { file: 'model-00002-of-00002.safetensors', tensors: [tensor('b', 2, async () => { controller.abort(); return new Uint8Array(16); }), tensor('c', 3)] },
    ];
    const out = path.join(parent, 'out');
    await assert.rejects(writeCheckpointFolder(out, { shards, index: { file: 'model.safetensors.index.json' }, signal: controller.signal }), (e: unknown) => e instanceof SafetensorsError && e.kind === 'Aborted');
    assert.deepEqual(await readdir(parent), []);
  });

  it('streams: shards one after the other, each tensor read only when due, one at a time', async () => {
    let active = 0;
    let most = 0;
    const order: string[] = [];
    const slow = (name: string): TensorSource => tensor(name, 1, async () => {
      active++;
      most = Math.max(most, active);
      order.push(name);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      return new Uint8Array(16);
    });
    const out = tmp.file('stream');
    const shards = [1, 2, 3].map((k) => ({ file: `model-0000${k}-of-00003.safetensors`, tensors: [slow(`s${k}.a`), slow(`s${k}.b`)] }));
    const started: string[] = [];
    await writeCheckpointFolder(out, { shards, index: { file: 'model.safetensors.index.json' }, onShard: (i) => started.push(`shard${i}:${order.length}`) });
    assert.equal(most, 1);
    assert.deepEqual(order, ['s1.a', 's1.b', 's2.a', 's2.b', 's3.a', 's3.b']);
    assert.deepEqual(started, ['shard0:0', 'shard1:2', 'shard2:4']);
    const index = JSON.parse(await readFile(path.join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, 6 * 16);
    assert.equal(index.weight_map['s2.b'], 'model-00002-of-00003.safetensors');
  });

  it('writes a manifest of its files; replaces exactly them; refuses a folder holding anything else', async () => {
    const parent = tmp.file('manifest');
    await mkdir(parent);
    const out = path.join(parent, 'out');
    await writeFile(path.join(parent, 'extra.json'), '{"a": 1}');
    const opts = { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 1)] }], copy: [path.join(parent, 'extra.json')] };
    await writeCheckpointFolder(out, opts);
    const manifest = JSON.parse(await readFile(path.join(out, OUTPUT_MANIFEST), 'utf8')) as { tool: string; files: string[] };
    assert.deepEqual(manifest, { tool: 'rebasin', files: ['extra.json', 'model.safetensors'] });
    await writeCheckpointFolder(out, { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 2)] }] });
    assert.deepEqual((await readdir(out)).sort(), [OUTPUT_MANIFEST, 'model.safetensors']);
    assert.deepEqual(await readdir(parent), ['extra.json', 'out']);
    await mkdir(path.join(out, 'sub'));
    await assert.rejects(writeCheckpointFolder(out, opts), /holds the folder `sub`, which Re-Basin did not write/);
    // A manifest that lists the subfolder does not make it ours: only regular files are.
    await writeFile(path.join(out, OUTPUT_MANIFEST), JSON.stringify({ tool: 'rebasin', files: ['model.safetensors', 'sub'] }));
    await assert.rejects(writeCheckpointFolder(out, opts), /holds the folder `sub`/);
    await writeFile(path.join(out, OUTPUT_MANIFEST), JSON.stringify({ tool: 'rebasin', files: ['../x'] }));
    await assert.rejects(writeCheckpointFolder(out, opts), /not empty and was not written by Re-Basin/);
    assert.ok(existsSync(path.join(out, 'sub')));
  });

  it('refuses a folder that holds a file the command reads (alsoReads), before writing anything', async () => {
    const parent = tmp.file('also-reads');
    await mkdir(parent);
    const out = path.join(parent, 'out');
    await writeCheckpointFolder(out, { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 1)] }] });
    await writeFile(path.join(out, 'spec.json'), '{}');
    await assert.rejects(writeCheckpointFolder(out, { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 1)] }], alsoReads: [path.join(out, 'spec.json')] }), /refusing to write over an input \(`spec.json` is in this folder\)/);
    assert.ok(existsSync(path.join(out, 'spec.json')));
  });

  it('stale temporary folders of a dead run: .tmp removed, .old loses only what its manifest lists', async () => {
    const parent = tmp.file('stale');
    await mkdir(parent);
    const dead = 4_194_305; // above Linux's largest pid_max (2^22): no process has it
    const tmpDir = path.join(parent, `.out.${dead}.0123456789ab.tmp`);
    const oldDir = path.join(parent, `.out.${dead}.0123456789ab.old`);
    const live = path.join(parent, `.out.${process.pid}.0123456789ab.tmp`);
    for (const d of [tmpDir, oldDir, live]) {
      await mkdir(d);
      await writeFile(path.join(d, 'model.safetensors'), 'x');
    }
    await writeFile(path.join(oldDir, OUTPUT_MANIFEST), JSON.stringify({ tool: 'rebasin', files: ['model.safetensors'] }));
    await writeFile(path.join(oldDir, 'note.txt'), 'mine');
    await removeStaleTempFolders(parent);
    assert.ok(!existsSync(tmpDir));
    assert.deepEqual(await readdir(oldDir), ['note.txt']);
    assert.ok(existsSync(path.join(live, 'model.safetensors')));
  });

  it('removeOwnTemps removes this process\'s temporary file and folder beside an output, nothing else', async () => {
    const parent = tmp.file('own-temps');
    await mkdir(parent);
    const mineDir = path.join(parent, `.out.${process.pid}.0123456789ab.tmp`);
    const mineFile = path.join(parent, `.out.${process.pid}.ba9876543210.tmp`);
    const other = path.join(parent, `.out.4194305.0123456789ab.tmp`);
    await mkdir(mineDir);
    await writeFile(path.join(mineDir, 'model.safetensors'), 'x');
    await writeFile(mineFile, 'x');
    await writeFile(other, 'x');
    await writeFile(path.join(parent, 'out'), 'x');
    await removeOwnTemps(path.join(parent, 'out'));
    assert.deepEqual((await readdir(parent)).sort(), [path.basename(other), 'out'].sort());
  });

  it('a failing tensor read leaves nothing; an earlier output of ours stays as it was', async () => {
    const parent = tmp.file('fail');
    await mkdir(parent);
    const out = path.join(parent, 'out');
    await writeCheckpointFolder(out, { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 1)] }], metadata: { 'rebasin.tool': 'rebasin' } });
    const before = await readFile(path.join(out, 'model.safetensors'));
    const failing = tensor('b', 2, () => Promise.reject(new Error('disk on fire')));
    await assert.rejects(writeCheckpointFolder(out, { shards: [{ file: 'model.safetensors', tensors: [tensor('a', 5), failing] }], metadata: { 'rebasin.tool': 'rebasin' } }), /disk on fire/);
    assert.deepEqual(await readdir(parent), ['out']);
    assert.deepEqual(await readFile(path.join(out, 'model.safetensors')), before);
  });

  it('a cancel through the handler (align of a sharded folder) leaves no output', async () => {
    const a = await copyFixture('llama-tiny-gqa-sharded', 'cancel-a');
    const controller = new AbortController();
    const parent = tmp.file('cancel-out');
    await mkdir(parent);
    const layoutSources: TensorSource[] = [];
    const weights = locateCheckpoint(a).weights;
    const ck = await openCheckpoint(weights);
    try {
      let n = 0;
      for (const t of ck.tensors) {
        layoutSources.push({ name: t.name, dtype: t.dtype, shape: t.shape, read: async () => {
          if (++n === 7) controller.abort();
          return ck.readRaw(t.name);
        } });
      }
      await assert.rejects(writeCheckpointOutput(path.join(parent, 'aligned'), a, layoutSources, { metadata: {}, inputs: [a], signal: controller.signal }), /cancelled/);
    } finally {
      await ck.close();
    }
    assert.deepEqual(await readdir(parent), []);
  });
});
