import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  SpecError,
  checkCompatible,
  formatSpecFile,
  inferSpec,
  log10Factorial,
  parseSpecFile,
  resolveSpec,
  skeletonSpecFile,
  specToFile,
  symmetryGroupLog10,
} from '../../../../src/core/permspec';
import { mlpStateDict, resnetStateDict, shapesOf } from '../../helpers/stateDicts';

/** Asserts fn throws a SpecError of that kind whose message contains every fragment. */
function throwsSpec(fn: () => unknown, kind: SpecError['kind'], ...fragments: string[]): SpecError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SpecError, `expected SpecError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" lacks "${f}"`);
    assert.ok(!e.message.includes('\n'), 'messages are one line');
    return e;
  }
  assert.fail(`expected SpecError ${kind}`);
}

const MLP_A = [
  { name: 'layers.0.weight', shape: [512, 784] },
  { name: 'layers.0.bias', shape: [512] },
  { name: 'layers.1.weight', shape: [512, 512] },
  { name: 'layers.1.bias', shape: [512] },
  { name: 'layers.2.weight', shape: [10, 512] },
  { name: 'layers.2.bias', shape: [10] },
];
const MLP_FILE = JSON.stringify({
  axes: {
    'layers.0.weight': ['P_0', null],
    'layers.0.bias': ['P_0'],
    'layers.1.weight': ['P_1', 'P_0'],
    'layers.1.bias': ['P_1'],
    'layers.2.weight': [null, 'P_1'],
  },
});

describe('parseSpecFile', () => {
  it('reads axes, perms, family and notes', () => {
    const f = parseSpecFile(JSON.stringify({ family: 'mlp', notes: ['x'], perms: { P_0: 512 }, axes: { 'a.weight': ['P_0', null] } }), 'spec.json');
    assert.deepEqual(f.axes, { 'a.weight': ['P_0', null] });
    assert.deepEqual(f.perms, { P_0: 512 });
    assert.equal(f.family, 'mlp');
    assert.deepEqual(f.notes, ['x']);
  });
  it('rejects text that is not json, naming the file', () => {
    const e = throwsSpec(() => parseSpecFile('{"axes": {', 'spec.json'), 'BadJson', 'spec.json: not valid json');
    assert.equal(e.file, 'spec.json');
  });
  it('rejects a top level that is not an object', () => {
    throwsSpec(() => parseSpecFile('[1,2]', 'spec.json'), 'BadStructure', 'spec.json', 'got an array');
  });
  it('rejects a missing or non-object axes', () => {
    throwsSpec(() => parseSpecFile('{}', 's.json'), 'BadStructure', '`axes` must be an object', 'got nothing');
    throwsSpec(() => parseSpecFile('{"axes": []}', 's.json'), 'BadStructure', '`axes` must be an object', 'got an array');
  });
  it('rejects an axes entry that is not an array, naming the tensor', () => {
    const e = throwsSpec(() => parseSpecFile('{"axes": {"fc.weight": "P_0"}}', 's.json'), 'BadStructure', 'tensor `fc.weight` must be an array');
    assert.equal(e.tensor, 'fc.weight');
  });
  it('rejects an axis item that is neither a name nor null', () => {
    throwsSpec(() => parseSpecFile('{"axes": {"fc.weight": ["P_0", 3]}}', 's.json'), 'BadStructure', 'axis 1 of tensor `fc.weight`', 'got a number');
    throwsSpec(() => parseSpecFile('{"axes": {"fc.weight": [""]}}', 's.json'), 'BadStructure', 'axis 0 of tensor `fc.weight`');
  });
  it('rejects unknown top-level keys', () => {
    throwsSpec(() => parseSpecFile('{"axes": {}, "axis_to_perm": {}}', 's.json'), 'BadStructure', 'unknown key `axis_to_perm`');
  });
  it('rejects bad perms, family and notes', () => {
    throwsSpec(() => parseSpecFile('{"axes": {}, "perms": {"P": 0}}', 's.json'), 'BadStructure', 'permutation `P` must be a positive integer');
    throwsSpec(() => parseSpecFile('{"axes": {}, "perms": []}', 's.json'), 'BadStructure', '`perms` must be an object');
    throwsSpec(() => parseSpecFile('{"axes": {}, "family": 1}', 's.json'), 'BadStructure', '`family` must be a string');
    throwsSpec(() => parseSpecFile('{"axes": {}, "notes": [1]}', 's.json'), 'BadStructure', '`notes` must be an array of strings');
  });
});

describe('parseSpecFile on arbitrary input', () => {
  it('returns a spec file or throws a SpecError, never anything else', () => {
    const tensors = [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }];
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.record({ axes: fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.jsonValue()) }).map((v) => JSON.stringify(v))), (text) => {
        try {
          resolveSpec(parseSpecFile(text, 'fuzz.json'), tensors, tensors, 'fuzz.json');
        } catch (e) {
          if (!(e instanceof SpecError)) throw e;
          assert.ok(e.message.startsWith('fuzz.json: '), e.message);
        }
      }),
      { numRuns: 500, seed: 3 },
    );
  });
});

describe('resolveSpec', () => {
  it('takes sizes from the tensors and leaves unlisted tensors unpermuted', () => {
    const spec = resolveSpec(parseSpecFile(MLP_FILE, 'spec.json'), MLP_A, MLP_A, 'spec.json');
    assert.deepEqual(spec.perms, { P_0: 512, P_1: 512 });
    assert.deepEqual(spec.axes['layers.2.bias'], [null]);
    assert.deepEqual(spec.axes['layers.1.weight'], ['P_1', 'P_0']);
    assert.equal(Object.keys(spec.axes).length, MLP_A.length);
  });
  it('names every missing tensor the spec lists', () => {
    const text = JSON.stringify({ axes: { 'layers.0.weight': ['P', null], 'fc9.weight': ['P', null], 'fc8.bias': ['P'] } });
    const e = throwsSpec(() => resolveSpec(parseSpecFile(text, 'my.json'), MLP_A, undefined, 'my.json', { a: 'a.safetensors', b: 'b.safetensors' }), 'MissingTensor', 'my.json: tensors', '`fc9.weight`', '`fc8.bias`', 'not in a.safetensors');
    assert.equal(e.tensor, 'fc9.weight');
  });
  it('rejects an entry with the wrong number of axes', () => {
    const text = JSON.stringify({ axes: { 'layers.0.bias': ['P_0', null] } });
    const e = throwsSpec(() => resolveSpec(parseSpecFile(text, 's.json'), MLP_A, undefined, 's.json'), 'RankMismatch', 's.json: tensor `layers.0.bias` has 1 axes [512] but the spec lists 2');
    assert.equal(e.tensor, 'layers.0.bias');
  });
  it('rejects a permutation acting on axes of different sizes', () => {
    const text = JSON.stringify({ axes: { 'layers.0.weight': ['P_0', 'P_0'] } });
    throwsSpec(() => resolveSpec(parseSpecFile(text, 's.json'), MLP_A, undefined, 's.json'), 'SizeConflict', 'permutation `P_0` acts on `layers.0.weight` axis 1 of size 784 but on `layers.0.weight` axis 0 of size 512');
  });
  it('treats names like __proto__ and constructor as ordinary names', () => {
    throwsSpec(() => resolveSpec(parseSpecFile('{"axes": {"__proto__": [null]}}', 's.json'), MLP_A, undefined, 's.json'), 'MissingTensor', '`__proto__`');
    const spec = resolveSpec(parseSpecFile('{"axes": {"layers.0.bias": ["constructor"]}, "perms": {"constructor": 512}}', 's.json'), MLP_A, undefined, 's.json');
    assert.equal(spec.perms.constructor, 512);
  });
  it('checks declared sizes in perms', () => {
    const wrong = JSON.stringify({ perms: { P_0: 256 }, axes: { 'layers.0.bias': ['P_0'] } });
    throwsSpec(() => resolveSpec(parseSpecFile(wrong, 's.json'), MLP_A, undefined, 's.json'), 'SizeConflict', '`P_0` is declared with size 256 but its axes have size 512');
    const unused = JSON.stringify({ perms: { P_9: 3 }, axes: {} });
    throwsSpec(() => resolveSpec(parseSpecFile(unused, 's.json'), MLP_A, undefined, 's.json'), 'SizeConflict', '`P_9` is declared in `perms` but acts on no axis');
  });
  it('names the first tensor whose shape differs between a and b', () => {
    const b = MLP_A.map((t) => (t.name === 'layers.1.weight' ? { ...t, shape: [512, 784] } : t.name === 'layers.2.weight' ? { ...t, shape: [10, 256] } : t));
    const e = throwsSpec(
      () => resolveSpec(parseSpecFile(MLP_FILE, 'spec.json'), MLP_A, b, 'spec.json', { a: 'a.safetensors', b: 'b.safetensors' }),
      'ShapeMismatch',
    );
    assert.equal(e.message, 'b.safetensors: tensor `layers.1.weight` has shape [512,784] but a.safetensors has [512,512]');
    assert.equal(e.tensor, 'layers.1.weight');
    assert.equal(e.file, 'b.safetensors');
  });
  it('names tensors present in only one checkpoint', () => {
    const e1 = throwsSpec(() => resolveSpec(parseSpecFile(MLP_FILE, 's'), MLP_A, MLP_A.slice(0, 5), 's', { a: 'a.st', b: 'b.st' }), 'NameMismatch');
    assert.equal(e1.message, 'b.st: tensor `layers.2.bias` is missing but a.st has it');
    const extra = [...MLP_A, { name: 'layers.10.bias', shape: [3] }];
    const e2 = throwsSpec(() => resolveSpec(parseSpecFile(MLP_FILE, 's'), MLP_A, extra, 's', { a: 'a.st', b: 'b.st' }), 'NameMismatch');
    assert.equal(e2.message, 'b.st: tensor `layers.10.bias` is not in a.st');
  });
});

describe('checkCompatible', () => {
  it('is null for the same names and shapes in any order', () => {
    assert.equal(checkCompatible(MLP_A, [...MLP_A].reverse(), 'a', 'b'), null);
  });
  it('reports the first difference in natural name order', () => {
    const a = [
      { name: 'layers.2.weight', shape: [4, 4] },
      { name: 'layers.10.weight', shape: [4, 4] },
    ];
    const b = [
      { name: 'layers.2.weight', shape: [4, 5] },
      { name: 'layers.10.weight', shape: [4, 6] },
    ];
    assert.equal(checkCompatible(a, b, 'a', 'b')?.tensor, 'layers.2.weight');
    assert.equal(checkCompatible(a, [{ name: 'layers.2.weight', shape: [4] }, b[1]], 'a', 'b')?.kind, 'ShapeMismatch');
  });
});

describe('spec file round trip', () => {
  it('formats an inferred spec so that parse + resolve gives it back', () => {
    const tensors = shapesOf(resnetStateDict({ block: 'bottleneck', layers: [2, 1], widths: [4, 8] }));
    const inferred = inferSpec(tensors);
    const text = formatSpecFile(specToFile(inferred.spec, { family: inferred.family, notes: inferred.notes }));
    const back = resolveSpec(parseSpecFile(text, 'spec.json'), tensors, tensors, 'spec.json');
    assert.deepEqual(back, inferred.spec);
    assert.ok(text.includes('\n    "layer1.0.conv1.weight": ["P_layer1.0.conv1","P_stem",null,null]'));
  });
  it('writes an all-null skeleton that resolves to no permutation', () => {
    const tensors = shapesOf(mlpStateDict({ sizes: [6, 5, 4] }));
    const skeleton = skeletonSpecFile(tensors);
    assert.deepEqual(skeleton.axes['layers.0.weight'], [null, null]);
    const spec = resolveSpec(parseSpecFile(formatSpecFile(skeleton), 'skeleton.json'), tensors, undefined, 'skeleton.json');
    assert.deepEqual(spec.perms, {});
  });
});

describe('symmetryGroupLog10', () => {
  it('is log10 of the product of factorials', () => {
    assert.ok(Math.abs(symmetryGroupLog10({ perms: { a: 5, b: 3, c: 1 }, axes: {} }) - Math.log10(120 * 6)) < 1e-12);
    assert.equal(symmetryGroupLog10({ perms: {}, axes: {} }), 0);
  });
  it('agrees with the direct sum past the Stirling crossover', () => {
    for (const n of [4097, 10000, 50000]) {
      let direct = 0;
      for (let k = 2; k <= n; k++) direct += Math.log10(k);
      assert.ok(Math.abs(log10Factorial(n) - direct) < 1e-6 * direct, `n=${n}`);
    }
  });
});
