/** Block axes (attention heads) in the spec format: parsing, validation, printing, applying. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError, formatSpecFile, parseSpecFile, resolveSpec, specToFile } from '../../../../src/core/permspec';
import { applyPermutations, axisPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { expandBlockAxis } from '../../../../src/core/blockAxis';
import { permuteRawBytes } from '../../../../src/engine/loadTensors';
import type { BlockAxis, DenseTensor } from '../../../../src/core/checkpoint';

const tensors = [
  { name: 'q.weight', shape: [8, 3] },
  { name: 'o.weight', shape: [3, 8] },
  { name: 'qkv.weight', shape: [3, 12] },
];

const heads = { split: [2, 4], perms: ['P_heads', 'P_vo'] };

function specText(axes: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, axes });
}

function throwsSpec(text: string, kind: string, pattern: RegExp): void {
  assert.throws(() => resolveSpec(parseSpecFile(text, 'heads.json'), tensors, undefined, 'heads.json'), (e: unknown) => {
    assert.ok(e instanceof SpecError, String(e));
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('spec files: block axes', () => {
  it('parse, resolve, and print back the same file', () => {
    const text = specText({
      'q.weight': [heads, null],
      'o.weight': [null, heads],
      'qkv.weight': [null, { concat: [{ split: [2, 2], perms: ['P_heads', 'P_qk'] }, { split: [2, 2], perms: ['P_heads', 'P_qk'] }, { split: [2, 2], perms: ['P_heads', null] }] }],
    });
    const spec = resolveSpec(parseSpecFile(text, 'heads.json'), tensors, tensors, 'heads.json');
    assert.deepEqual(spec.perms, { P_heads: 2, P_vo: 8, P_qk: 4 });
    assert.deepEqual(spec.blocks, { P_vo: 2, P_qk: 2 });
    const printed = formatSpecFile(specToFile(spec));
    assert.match(printed, /"q\.weight": \[\{"split":\[2,4\],"perms":\["P_heads","P_vo"\]\},null\]/);
    assert.match(printed, /"concat":\[/);
    const again = resolveSpec(parseSpecFile(printed, 'printed.json'), tensors, tensors, 'printed.json');
    assert.deepEqual(again, spec);
  });

  it('old files (names and null only) resolve exactly as before', () => {
    const spec = resolveSpec(parseSpecFile(specText({ 'q.weight': ['P', null], 'o.weight': [null, 'P'] }), 'old.json'), tensors, undefined, 'old.json');
    assert.deepEqual(spec.perms, { P: 8 });
    assert.equal(spec.blocks, undefined);
  });

  it('refuses malformed block axes with one clear line', () => {
    throwsSpec(specText({ 'q.weight': [{ split: [2, 4] }, null] }), 'BadStructure', /`perms` must be an array/);
    throwsSpec(specText({ 'q.weight': [{ split: [8], perms: ['P'] }, null] }), 'BadStructure', /at least two positive integers/);
    throwsSpec(specText({ 'q.weight': [{ split: [2, 4], perms: ['P'] }, null] }), 'BadStructure', /`perms` has 1 entries but `split` has 2 levels/);
    throwsSpec(specText({ 'q.weight': [{ split: [2, 4], perms: [null, 'P'] }, null] }), 'BadStructure', /first level must name the permutation of the blocks/);
    throwsSpec(specText({ 'q.weight': [{ split: [2, 4], perms: ['P', 'P'] }, null] }), 'BadStructure', /named at two levels/);
    throwsSpec(specText({ 'q.weight': [{ split: [2, 4], perms: ['P', null], extra: 1 }, null] }), 'BadStructure', /unknown key `extra`/);
    throwsSpec(specText({ 'q.weight': [{ concat: [], split: [2, 4] }, null] }), 'BadStructure', /^heads\.json: axis 0 of tensor `q\.weight`: `concat` cannot be combined with other keys$/);
    throwsSpec(specText({ 'q.weight': [{ concat: [] }, null] }), 'BadStructure', /^heads\.json: axis 0 of tensor `q\.weight`: `concat` must be a non-empty array of blocks$/);
    throwsSpec(specText({ 'q.weight': [null, { concat: [heads, 3] }] }), 'BadStructure', /^heads\.json: axis 1 part 1 of tensor `q\.weight`: a block must be an object with `split` and `perms`, got a number$/);
    throwsSpec(specText({ 'q.weight': [{ concat: [{ split: [2, 4], perms: ['P', 7] }] }, null] }), 'BadStructure', /^heads\.json: axis 0 part 0 of tensor `q\.weight`: `perms` must be an array of permutation names or null/);
    throwsSpec(specText({ 'q.weight': [{ split: [2, 2], perms: ['P', null] }, null] }), 'SizeConflict', /cover 4 positions but the axis has 8/);
    throwsSpec(specText({ 'q.weight': [heads, null], 'o.weight': [null, 'P_vo'] }), 'SizeConflict', /`P_vo` acts as a whole on `o\.weight` axis 1 but inside 2 blocks/);
    throwsSpec(specText({ 'q.weight': [heads, null], 'o.weight': [null, { split: [4, 2], perms: ['P_heads', null] }] }), 'SizeConflict', /`P_heads` acts on `o\.weight` axis 1 level 0 of size 4 but on `q\.weight` axis 0 level 0 of size 2/);
  });

  it('a per-block permutation drawn at random stays inside its blocks', () => {
    const spec = resolveSpec(parseSpecFile(specText({ 'q.weight': [heads, null] }), 'h.json'), tensors, undefined, 'h.json');
    for (let seed = 0; seed < 20; seed++) {
      const vo = randomPermutations(spec, seed).P_vo;
      for (let i = 0; i < 8; i++) assert.equal(Math.floor(vo[i] / 4), Math.floor(i / 4));
    }
  });

  it('expands to gather indices: A block g takes B block outer[g], inner permutation of block g', () => {
    const axis: BlockAxis = { parts: [{ split: [2, 2, 3], perms: ['K', 'Q', 'V'] }] };
    // K swaps the groups; Q swaps the heads in group 0 only; V reverses group 1's dims.
    const perms = { K: Int32Array.from([1, 0]), Q: Int32Array.from([1, 0, 2, 3]), V: Int32Array.from([0, 1, 2, 5, 4, 3]) };
    const idx = expandBlockAxis(axis, perms, (n) => { throw new Error(n); });
    // Position (g, j, i) -> source (K[g], Q_g(j), V_g(i)) in [2, 2, 3] row-major.
    const expect: number[] = [];
    for (let g = 0; g < 2; g++) for (let j = 0; j < 2; j++) for (let i = 0; i < 3; i++) {
      const q = perms.Q[g * 2 + j] - g * 2;
      const v = perms.V[g * 3 + i] - g * 3;
      expect.push(perms.K[g] * 6 + q * 3 + v);
    }
    assert.deepEqual(Array.from(idx), expect);
  });

  it('applying to float tensors and to raw bytes gives the same result', () => {
    const spec = resolveSpec(parseSpecFile(specText({ 'q.weight': [heads, null], 'o.weight': [null, heads] }), 'h.json'), tensors, undefined, 'h.json');
    const perms = randomPermutations(spec, 7);
    const q: DenseTensor = { shape: [8, 3], data: Float32Array.from({ length: 24 }, (_, i) => i) };
    // Every tensor the spec permutes must be there (a missing one is an error, not a pass).
    const o: DenseTensor = { shape: [3, 8], data: new Float32Array(24) };
    const out = applyPermutations(spec, perms, new Map([['q.weight', q], ['o.weight', o]])).get('q.weight')!;
    assert.throws(() => applyPermutations(spec, perms, new Map([['q.weight', q]])), /names `o.weight` but the weights hold no such tensor/);
    const full = expandBlockAxis(spec.axes['q.weight'][0] as BlockAxis, perms, (n) => { throw new Error(n); });
    for (let r = 0; r < 8; r++) for (let c = 0; c < 3; c++) assert.equal(out.data[r * 3 + c], q.data[full[r] * 3 + c]);
    // The writer's per-axis indices (what `align --out` uses) are the expanded block axis.
    const writerAxes = axisPermutations(spec, perms, 'q.weight', 2);
    assert.deepEqual(Array.from(writerAxes[0]!), Array.from(full));
    assert.equal(writerAxes[1], null);
    const raw = permuteRawBytes(new Uint8Array(q.data.buffer.slice(0)), 'F32', q.shape, writerAxes, 'b.safetensors', 'q.weight');
    assert.deepEqual(Array.from(new Float32Array(raw.buffer)), Array.from(out.data));
  });
});

describe('memory plan: heads', () => {
  it("a head group's solve counts one similarity per block part", async () => {
    const { planWeightMatching } = await import('../../../../src/core/memoryPlan');
    const spec = resolveSpec(parseSpecFile(specText({
      'qkv.weight': [null, { concat: [{ split: [2, 2], perms: ['P_heads', 'P_qk'] }, { split: [2, 2], perms: ['P_heads', 'P_qk'] }, { split: [2, 2], perms: ['P_heads', 'P_vo'] }] }],
      'o.weight': [null, { split: [2, 4], perms: ['P_heads', 'P_vo2'] }],
    }), 'h.json'), tensors, undefined, 'h.json');
    const shapes = new Map(tensors.map((t) => [t.name, t.shape]));
    const plan = planWeightMatching(spec, shapes, { budget: 1e9, heldBytes: 0 });
    const heads = plan.perms.find((p) => p.name === 'P_heads')!;
    // 3 parts of 4 and one of 8 positions: (3 * 16 + 64) * 4 bytes of similarities at most.
    assert.ok(heads.solveBytes >= (3 * 16 + 64) * 4);
  });
});
