/**
 * Heatmaps of per-block permutations (attention heads' inner dims) travel as their diagonal
 * blocks only: the engine's blocks equal the diagonal blocks of the whole similarity matrices
 * (GPT-2 and Llama-GQA fixtures aligned with a known permutation of themselves), "before" pairs
 * the same heads as "after" (every other permutation applied, these dims not), the panel's schema
 * accepts them, and a GPT-2-sized model's heatmaps shrink by the number of heads.
 * Fixtures: test/fixtures/hf (copied from transformers, see its SOURCES.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import * as path from 'node:path';
import * as v from 'valibot';
import type { DenseTensor, PermSpec, Permutations } from '../../../../src/core/checkpoint';
import { encodeFromFloat32, openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import { applyPermutations, identityPermutations, randomPermutations } from '../../../../src/core/matching/permute';
import { similarityMatrix } from '../../../../src/core/matching/weightMatching';
import { initBackend } from '../../../../src/engine/backend';
import type { HandlerContext } from '../../../../src/engine/handlerContext';
import { alignHandler } from '../../../../src/engine/handlers/align';
import type { AlignResult } from '../../../../src/engine/protocol';
import { heatmapsOf } from '../../../../src/extension/heatmaps';
import { heatmapDataSchema, heatmapValues } from '../../../../shared/messages/alignment';
import { diagonalBlock, expandBlocks } from '../../../../shared/pixels/heatmapBlocks';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  await initBackend('wasm');
  tmp = await makeTmpDir('rebasin-heatblocks-');
});
after(() => tmp.remove());

const ctx = (): HandlerContext => ({ signal: new AbortController().signal, onProgress: () => undefined, log: () => undefined });

async function readAll(file: string): Promise<Map<string, DenseTensor>> {
  const ck = await openCheckpoint(file);
  try {
    const out = new Map<string, DenseTensor>();
    for (const t of ck.tensors) out.set(t.name, { shape: [...t.shape], data: await ck.readFloat32(t.name) });
    return out;
  } finally {
    await ck.close();
  }
}

/** A copy of fixture `name` whose weights are a known random element of its symmetry group. */
async function permutedCopy(name: string, seed: number): Promise<{ a: string; b: string; spec: PermSpec; ta: Map<string, DenseTensor>; tb: Map<string, DenseTensor> }> {
  const a = hfFixture(name);
  const weights = path.join(a, 'model.safetensors');
  const ta = await readAll(weights);
  const spec = inferSpec([...ta].map(([n, t]) => ({ name: n, shape: t.shape })), readHfConfig(weights)).spec;
  const tb = applyPermutations(spec, randomPermutations(spec, seed), ta);
  const b = tmp.file(`${name}-permuted`);
  await cp(a, b, { recursive: true });
  await rm(path.join(b, 'model.safetensors'));
  await writeSafetensors(path.join(b, 'model.safetensors'),
    [...tb].map(([n, t]) => ({ name: n, dtype: 'F32' as const, shape: t.shape, read: async () => encodeFromFloat32('F32', t.data) })));
  return { a, b, spec, ta, tb };
}

/** Block g (m × m) of a row-major n × n matrix. */
function blockOfMatrix(full: Float32Array, n: number, m: number, g: number): Float32Array {
  const out = new Float32Array(m * m);
  for (let i = 0; i < m; i++) out.set(full.subarray((g * m + i) * n + g * m, (g * m + i) * n + g * m + m), i * m);
  return out;
}

function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const scale = want.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= 1e-4 * Math.max(1, scale), `${what}: differs by ${worst} (scale ${scale})`);
}

const asPerms = (r: AlignResult): Permutations => Object.fromEntries(Object.entries(r.perms).map(([k, p]) => [k, Int32Array.from(p)]));

describe('per-block heatmaps as diagonal blocks', () => {
  for (const [fixture, seed] of [['gpt2-tiny', 5], ['llama-tiny-gqa', 6]] as const) {
    it(`${fixture}: the engine's blocks are the diagonal blocks of the whole matrices; before pairs the same heads`, async () => {
      const { a, b, spec, ta, tb } = await permutedCopy(fixture, seed);
      const r = await alignHandler({ kind: 'align', a, b, method: 'weight', seed: 0, maxIter: 20, includeMatrices: true }, ctx());
      const perms = asPerms(r);
      const blocked = Object.keys(spec.blocks ?? {}).filter((n) => (spec.blocks?.[n] ?? 1) > 1);
      assert.ok(blocked.some((n) => n.endsWith('.vo')), 'the fixture has per-block v/o permutations');
      if (fixture === 'gpt2-tiny') assert.ok(blocked.some((n) => n.endsWith('.qk')), 'GPT-2 has per-block q/k permutations');
      const identity = identityPermutations(spec);
      for (const m of r.matrices ?? []) {
        const blocks = spec.blocks?.[m.name] ?? 1;
        if (blocks === 1) {
          assert.equal(m.blocks, undefined, `${m.name} is sent whole`);
          assert.equal(m.before.length, m.size * m.size);
          continue;
        }
        assert.equal(m.blocks, blocks, `${m.name}: blocks`);
        const side = m.size / blocks;
        assert.equal(m.before.length, blocks * side * side, `${m.name}: only the diagonal blocks are sent`);
        const fullAfter = similarityMatrix(spec, ta, tb, perms, m.name);
        const fullBefore = similarityMatrix(spec, ta, tb, { ...perms, [m.name]: identity[m.name] }, m.name);
        const inner = perms[m.name];
        for (let g = 0; g < blocks; g++) {
          const got = { before: m.before.subarray(g * side * side, (g + 1) * side * side), after: m.after.subarray(g * side * side, (g + 1) * side * side) };
          assertClose(got.after, blockOfMatrix(fullAfter, m.size, side, g), `${m.name} block ${g} after`);
          assertClose(got.before, blockOfMatrix(fullBefore, m.size, side, g), `${m.name} block ${g} before`);
          // Same heads, before and after: after[u, v] = before[u, τ_g(v)] (B's dims gathered by the inner permutation).
          for (let u = 0; u < side; u++) {
            for (let w = 0; w < side; w++) {
              const tau = inner[g * side + w] - g * side;
              assert.ok(Math.abs(got.after[u * side + w] - got.before[u * side + tau]) <= 1e-4 * Math.max(1, Math.abs(got.before[u * side + tau])), `${m.name} block ${g}: after is before with the dims permuted`);
            }
          }
        }
        // Nothing lies outside the diagonal blocks of the whole matrix: the blocks lose nothing.
        const expanded = expandBlocks(m);
        assertClose(expanded.after, fullAfter, `${m.name} expanded after`);
      }
      // What the panel receives validates, keeps the blocks, and reads back block by block.
      for (const hm of heatmapsOf(r)) {
        const checked = v.parse(heatmapDataSchema, hm);
        if (hm.blocks === undefined) continue;
        const side = hm.size / hm.blocks;
        assert.equal(checked.before.length, heatmapValues(hm));
        assert.deepEqual(Array.from(diagonalBlock(checked, 'after', hm.blocks - 1, side)!), Array.from(hm.after.subarray((hm.blocks - 1) * side * side)));
      }
    });
  }

  it('the schema rejects blocks that do not fit the size', () => {
    const base = { name: 'h.0.vo', size: 8, blocks: 2, perm: [0, 1, 2, 3, 4, 5, 6, 7], before: new Float32Array(32), after: new Float32Array(32) };
    assert.ok(v.safeParse(heatmapDataSchema, base).success);
    assert.ok(!v.safeParse(heatmapDataSchema, { ...base, before: new Float32Array(64) }).success, 'a whole matrix labelled as blocks');
    assert.ok(!v.safeParse(heatmapDataSchema, { ...base, blocks: 3 }).success, 'size not a multiple of blocks');
    assert.ok(!v.safeParse(heatmapDataSchema, { ...base, originalSize: 16 }).success, 'blocks are never downsampled');
  });

  it('a GPT-2-sized model (12 layers, 12 heads × 64 dims): bytes sent for the q/k and v/o heatmaps', () => {
    const n = 768;
    const heads = 12;
    const layers = 12;
    // The q/k and v/o heatmaps of every layer as the panel receives them, checked by the schema.
    const perm = Array.from({ length: n }, (_, i) => i);
    let compact = 0;
    for (let i = 0; i < 2 * layers; i++) {
      const values = heatmapValues({ size: n, blocks: heads });
      const h = v.parse(heatmapDataSchema, { name: `h.${i >> 1}.${i % 2 ? 'vo' : 'qk'}`, size: n, blocks: heads, perm, before: new Float32Array(values), after: new Float32Array(values) });
      compact += h.before.byteLength + h.after.byteLength + 4 * h.perm.length;
    }
    // The same heatmaps as whole matrices (not allocated: 113 MB).
    const whole = 2 * layers * (2 * 4 * heatmapValues({ size: n }) + 4 * n);
    assert.equal(heatmapValues({ size: n, blocks: heads }), heads * 64 * 64);
    assert.ok(whole > 110e6, `the whole matrices are about 113 MB (${whole})`);
    assert.ok(compact < 10e6, `the blocks are under 10 MB (${compact})`);
    assert.ok(compact * 10 < whole, 'at least ten times smaller');
  });
});
