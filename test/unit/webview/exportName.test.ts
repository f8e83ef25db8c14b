import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distinctLabels, distinctSlugs, exportFileName, provenanceText } from '../../../webview/exportName';

const ref = (p: string) => ({ name: p.split('/').pop() ?? p, path: p });

test('labels of different files are their stems', () => {
  assert.deepEqual(distinctLabels(ref('/w/mlp_a.safetensors'), ref('/w/mlp_b.safetensors')), ['mlp_a', 'mlp_b']);
  assert.deepEqual(distinctLabels(ref('/w/m.safetensors.index.json'), ref('/w/n.safetensors')), ['m', 'n']);
});

test('same-named files are told apart by as many folders as it takes', () => {
  assert.deepEqual(distinctLabels(ref('/w/gpt2-a/model.safetensors'), ref('/w/gpt2-b/model.safetensors')), ['gpt2-a/model', 'gpt2-b/model']);
  assert.deepEqual(distinctLabels(ref('/w/x/hf/model.safetensors'), ref('/w/y/hf/model.safetensors')), ['x/hf/model', 'y/hf/model']);
  // The same path twice: nothing tells them apart, the stems are kept.
  assert.deepEqual(distinctLabels(ref('/w/model.safetensors'), ref('/w/model.safetensors')), ['model', 'model']);
});

test('long names are clipped around the part where they differ, start, middle or end', () => {
  const long = 'experiment_2026_11_30_resnet20_cifar10_width4';
  const [a, b] = distinctSlugs(ref(`/w/${long}_seed17_epoch200_final_ema.safetensors`), ref(`/w/${long}_seed42_epoch200_final_ema.safetensors`));
  assert.ok(a.length <= 24 && b.length <= 24, `${a} ${b}`);
  assert.match(a, /17/);
  assert.match(b, /42/);
  assert.notEqual(a, b);
  const [c, d] = distinctSlugs(ref(`/w/run1_${long}.safetensors`), ref(`/w/run2_${long}.safetensors`));
  assert.match(c, /^run1/);
  assert.match(d, /^run2/);
  // Short names are kept whole.
  assert.deepEqual(distinctSlugs(ref('/w/a.safetensors'), ref('/w/b.safetensors')), ['a', 'b']);
});

test('export file names: "<B>-to-<A>[-<group>]-<what>.<ext>", at most 90 characters', () => {
  assert.equal(exportFileName({ a: ref('/w/mlp_a.safetensors'), b: ref('/w/mlp_b.safetensors') }, 'curve', 'png'), 'mlp_b-to-mlp_a-curve.png');
  assert.equal(exportFileName({ a: ref('/w/s1/model.safetensors'), b: ref('/w/s2/model.safetensors') }, 'after', 'csv', 'P_layers.0'), 's2_model-to-s1_model-P_layers.0-after.csv');
  const long = 'x'.repeat(120);
  const name = exportFileName({ a: ref(`/w/${long}1.safetensors`), b: ref(`/w/${long}2.safetensors`) }, 'distance', 'png', 'g'.repeat(50));
  assert.ok(name.length <= 90, name);
});

test('provenance: file, split and examples; language models: sequences, tokens, positions', () => {
  assert.equal(provenanceText({ name: 'mnist', split: 'test', examples: 10000 }), 'mnist (test split, 10,000 examples)');
  assert.equal(provenanceText({ name: 'one.safetensors', split: 'train', examples: 1 }), 'one.safetensors (train split, 1 example)');
  assert.equal(provenanceText({ name: 'tokens.npy', sequences: 64, seqLen: 128, positions: 8128 }), 'tokens.npy (64 sequences of 128 tokens, 8,128 positions scored)');
  assert.equal(provenanceText({ name: 'data' }), 'data');
});
