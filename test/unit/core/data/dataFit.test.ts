import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { dataFitProblem, dataShape, defaultDataFor, loadDataset } from '../../../../src/core/data';
import { writeSafetensors, type TensorSource } from '../../../../src/core/safetensors';
import { tmpDirFor } from '../../helpers/tmp';
import { zipBytes } from '../../helpers/zipBytes';

/** A minimal .npy (version 1) of `descr` and `shape` with a zero body. */
function npy(descr: string, shape: number[], bytesPer: number): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.alloc(shape.reduce((a, b) => a * b, 1) * bytesPer)]);
}

const f32 = (name: string, shape: number[]): TensorSource => ({ name, dtype: 'F32', shape, read: async () => new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });

test('tells labelled examples from token ids and text by names and headers', async (t) => {
  const tmp = await tmpDirFor(t);
  writeFileSync(tmp.file('ids.npy'), npy('<i4', [4, 8], 4));
  writeFileSync(tmp.file('x.npy'), npy('<f4', [4, 8], 4));
  writeFileSync(tmp.file('y.npy'), npy('<i8', [4], 8));
  writeFileSync(tmp.file('corpus.txt'), 'hello world\n');
  await writeSafetensors(tmp.file('xy.safetensors'), [f32('x', [4, 8]), f32('y', [4])]);
  await writeSafetensors(tmp.file('tokens.safetensors'), [{ name: 'input_ids', dtype: 'I32', shape: [2, 4], read: async () => new Uint8Array(32) }]);
  assert.equal((await dataShape(tmp.file('ids.npy')))?.kind, 'tokens');
  assert.equal((await dataShape(tmp.file('x.npy')))?.kind, 'labelled');
  assert.equal((await dataShape(tmp.file('corpus.txt')))?.kind, 'text');
  assert.equal((await dataShape(tmp.file('xy.safetensors')))?.kind, 'labelled');
  assert.equal((await dataShape(tmp.file('tokens.safetensors')))?.kind, 'tokens');
  assert.equal((await dataShape(tmp.path))?.kind, 'labelled', 'a folder is read as IDX images and labels');
  // .npz: told from the archive's directory alone (entries of arrays named x/y, or input_ids).
  const stored = (name: string, data: Buffer) => ({ name, stored: data, method: 0 as const, size: data.length });
  writeFileSync(tmp.file('xy.npz'), zipBytes([stored('x.npy', npy('<f4', [4, 8], 4)), stored('y.npy', npy('<i8', [4], 8))]));
  writeFileSync(tmp.file('ids.npz'), zipBytes([stored('input_ids.npy', npy('<i4', [2, 4], 4))]));
  assert.equal((await dataShape(tmp.file('xy.npz')))?.kind, 'labelled');
  assert.equal((await dataShape(tmp.file('ids.npz')))?.kind, 'tokens');
  assert.equal(await dataShape(tmp.file('missing.npy')), undefined, 'a missing path is left to the loader');
});

test('token data for a classifier and labelled data for a language model are refused with the cause', async (t) => {
  const tmp = await tmpDirFor(t);
  writeFileSync(tmp.file('ids.npy'), npy('<i4', [4, 8], 4));
  await writeSafetensors(tmp.file('xy.safetensors'), [f32('x', [4, 8]), f32('y', [4])]);
  const mlp = tmp.file('mlp.safetensors');
  writeFileSync(mlp, '');
  mkdirSync(tmp.file('gpt2'));
  writeFileSync(tmp.file('gpt2/config.json'), JSON.stringify({ model_type: 'gpt2' }));
  const lm = tmp.file('gpt2/model.safetensors');
  writeFileSync(lm, '');
  assert.equal(
    await dataFitProblem(tmp.file('ids.npy'), mlp),
    'ids.npy holds an array without labels beside it (token ids), data for a language model, but mlp.safetensors is evaluated as a classifier (no config.json naming a language model beside it): pick labelled examples (x/y or images/labels, an IDX folder)',
  );
  assert.match((await dataFitProblem(tmp.file('xy.safetensors'), lm)) ?? '', /^xy\.safetensors holds labelled examples for a classifier, but gpt2 is a language model/);
  assert.equal(await dataFitProblem(tmp.file('ids.npy'), lm), undefined);
  assert.equal(await dataFitProblem(tmp.file('ids.npy'), tmp.file('gpt2')), undefined, 'a model folder is a language model');
  assert.equal(await dataFitProblem(tmp.file('xy.safetensors'), mlp), undefined);
});

test('a lone .npy read as labelled data says it has no labels and what token ids are for, not "tried nothing"', async (t) => {
  const tmp = await tmpDirFor(t);
  writeFileSync(tmp.file('ids.npy'), npy('<i4', [4, 8], 4));
  await assert.rejects(loadDataset({ path: tmp.file('ids.npy') }, 'test'), (e: Error) => {
    assert.doesNotMatch(e.message, /tried nothing/);
    assert.match(e.message, /ids\.npy: a \.npy alone has no labels: classifiers need labelled examples .*token ids are evaluation data for language models only/);
    return true;
  });
});

test("a run's data: given, else the model's remembered choice, else the setting; kept only when it suits the model", async (t) => {
  const tmp = await tmpDirFor(t);
  writeFileSync(tmp.file('ids.npy'), npy('<i4', [4, 8], 4));
  await writeSafetensors(tmp.file('xy.safetensors'), [f32('x', [4, 8]), f32('y', [4])]);
  const mlp = tmp.file('mlp.safetensors');
  writeFileSync(mlp, '');
  const [ids, xy] = [tmp.file('ids.npy'), tmp.file('xy.safetensors')];
  // One workspace setting (token ids, for a language model elsewhere) and an MLP with its own choice.
  assert.deepEqual(await defaultDataFor({ evaluated: mlp, remembered: xy, setting: ids }), { path: xy, source: 'remembered' });
  assert.deepEqual(await defaultDataFor({ evaluated: mlp, setting: xy }), { path: xy, source: 'setting' });
  assert.deepEqual(await defaultDataFor({ evaluated: mlp, remembered: null, setting: xy }), { source: 'remembered' }, '"no data" chosen for this model');
  assert.deepEqual(await defaultDataFor({ evaluated: mlp, given: null, remembered: xy }), {});
  assert.deepEqual(await defaultDataFor({ evaluated: mlp, given: xy, remembered: ids }), { path: xy, source: 'given' });
  assert.deepEqual(await defaultDataFor({ evaluated: mlp }), {});
  const fromSetting = await defaultDataFor({ evaluated: mlp, setting: ids });
  assert.equal(fromSetting.path, undefined, 'the setting does not suit the MLP: not used');
  assert.match(fromSetting.problem ?? '', /^ids\.npy holds .* but mlp\.safetensors is evaluated as a classifier/);
  const given = await defaultDataFor({ evaluated: mlp, given: ids });
  assert.deepEqual([given.source, given.path], ['given', undefined]);
  assert.ok(given.problem);
});
