/**
 * The method registry (src/core/methods/) is the one source of the methods' ids, options,
 * defaults and rules: the engine's request validation, the CLI and the extension's settings
 * (package.json) agree with it, and the seed has one range everywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_METHOD, MAX_ITER, METHODS, METHOD_IDS, SEED, defaultOptions, methodOptionsOf } from '../../../../src/core/methods';
import { MATCHING_METHODS } from '../../../../src/engine/methods/registry';
import { validateRequest } from '../../../../src/engine/validate';
import { USAGE, flagText, parseCommandLine } from '../../../../src/cli/args';

const root = path.resolve(__dirname, '..', '..', '..', '..');
const align = { kind: 'align', a: 'a.safetensors', b: 'b.safetensors', method: 'weight', seed: 0, maxIter: 100 };

test('every method has its texts, options and one engine computation', () => {
  assert.deepEqual(METHOD_IDS, ['weight', 'activation', 'ste']);
  for (const m of METHODS) {
    assert.equal(MATCHING_METHODS[m.id].id, m.id);
    assert.ok(m.label && m.detail, m.id);
  }
  assert.deepEqual(defaultOptions('ste'), { epochs: 1, batchSize: 500, learningRate: 1e-3 });
});

test("package.json's settings have the registry's defaults and seed range", () => {
  const props = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).contributes.configuration.properties;
  assert.equal(props['rebasin.maxIterations'].default, MAX_ITER.default);
  assert.equal(props['rebasin.maxIterations'].minimum, MAX_ITER.min);
  assert.equal(props['rebasin.seed'].default, SEED.default);
  assert.equal(props['rebasin.seed'].minimum, SEED.min);
  assert.equal(props['rebasin.seed'].maximum, SEED.max);
});

test('the CLI help shows the registry defaults', () => {
  assert.match(USAGE, /--method M +align\/barrier: weight \(default\) \| activation \| ste/);
  assert.match(USAGE, new RegExp(`--max-iter N .*\\(default ${MAX_ITER.default}\\)`));
  assert.match(USAGE, /--ste-batch N +ste: batch size \(default 500\)\n +--ste-lr X +ste: learning rate \(default 1e-3\)/);
  assert.match(USAGE, /\(activation and ste need --data\)/);
});

test("the CLI takes every method's option flags from the registry, into the method's own request field", () => {
  for (const m of METHODS) {
    for (const o of m.options) {
      const args = parseCommandLine(['align', 'a', 'b', `--${o.flag}`, String(o.default)]);
      assert.equal(flagText(args, o.flag), String(o.default), o.flag);
    }
  }
  const ste = { epochs: 1, batchSize: 10, learningRate: 1e-3 };
  assert.deepEqual(methodOptionsOf('ste', { ste, seed: 0 }), { ste });
  assert.deepEqual(methodOptionsOf('weight', { ste, seed: 0 }), {});
  assert.equal(DEFAULT_METHOD, 'weight');
});

test('request validation applies the registry rules: seed in [0, 2^32 - 1], maxIter >= 1, STE options', () => {
  assert.doesNotThrow(() => validateRequest({ ...align, seed: 0xffffffff }));
  assert.throws(() => validateRequest({ ...align, seed: -1 }), /field `seed` must be an integer in \[0, 4294967295\]/);
  assert.throws(() => validateRequest({ ...align, seed: 2 ** 32 }), /field `seed`/);
  assert.throws(() => validateRequest({ ...align, maxIter: 0 }), /field `maxIter` must be an integer >= 1/);
  assert.throws(() => validateRequest({ ...align, method: 'sinkhorn' }), /method/);
  const ste = { ...align, method: 'ste', ste: { epochs: 1, batchSize: 10, learningRate: 1e-3 } };
  assert.doesNotThrow(() => validateRequest(ste));
  assert.throws(() => validateRequest({ ...ste, ste: { ...ste.ste, learningRate: 0 } }), /field `ste`: field `learningRate` must be a number > 0|learningRate/);
  assert.throws(() => validateRequest({ ...ste, ste: { ...ste.ste, epochs: 1.5 } }), /epochs/);
});
