/**
 * Function preservation: permuting every tensor by a random permutation under the inferred
 * spec must leave the network's outputs unchanged (Git Re-Basin section 2). Plain-TS forward
 * passes in float64 over the builders' state dicts; a local gather helper applies the spec
 * (the project's own permute lives in src/core/matching). A negative control checks each
 * forward pass notices a permutation applied to one tensor only.
 */
import { entryPermutation } from '../../../../src/core/blockAxis';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PermSpec } from '../../../../src/core/checkpoint';
import { inferSpec } from '../../../../src/core/permspec';
import type { HfConfig } from '../../../../src/core/families';
import {
  mlpLayerName,
  bertStateDict,
  cifarResnetStateDict,
  gpt2StateDict,
  llamaStateDict,
  mlpStateDict,
  resnetStateDict,
  seededRandom,
  shapesOf,
  vggStateDict,
  type StateTensor,
} from '../../helpers/stateDicts';
import { get, mlpForward, vggForward, resnetForward, gpt2Forward, llamaForward, bertForward } from '../../helpers/referenceForward';

interface T {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
type W = Map<string, T>;

// ------------------------------------------------------------------ permuting

function randomPerm(n: number, rand: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** out = take(x, perm, axis) */
function take(t: T, perm: Int32Array, axis: number): T {
  const n = t.shape[axis];
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(t.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const src = (o * n + perm[i]) * inner;
      out.set(t.data.subarray(src, src + inner), (o * n + i) * inner);
    }
  }
  return { shape: t.shape, data: out };
}

function permuteAll(tensors: readonly StateTensor[], spec: PermSpec, seed: number): W {
  const rand = seededRandom(seed);
  const perms: Record<string, Int32Array> = {};
  for (const [name, n] of Object.entries(spec.perms)) {
    // A per-block permutation (heads' inner dimensions) is drawn inside each block.
    const blocks = spec.blocks?.[name] ?? 1;
    const size = n / blocks;
    perms[name] = new Int32Array(n);
    for (let g = 0; g < blocks; g++) randomPerm(size, rand).forEach((v, i) => { perms[name][g * size + i] = g * size + v; });
  }
  const out: W = new Map();
  for (const t of tensors) {
    let cur: T = t;
    spec.axes[t.name].forEach((p, axis) => {
      const full = entryPermutation(p, perms, (q) => { throw new Error(q); });
      if (full !== null) cur = take(cur, full, axis);
    });
    out.set(t.name, cur);
  }
  return out;
}

const asMap = (tensors: readonly StateTensor[]): W => new Map(tensors.map((t) => [t.name, t]));


function randomInput(n: number, seed: number): Float64Array {
  const r = seededRandom(seed);
  return Float64Array.from({ length: n }, () => 2 * r() - 1);
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * The inferred spec preserves `forward`, some permutation is not the identity, and permuting a
 * single tensor (`victim`, on its first permuted axis) changes the output: the check has teeth.
 */
function assertPreserved(tensors: StateTensor[], forward: (w: W) => Float64Array, victim: string, hf?: HfConfig): void {
  const spec = inferSpec(shapesOf(tensors), hf).spec;
  assert.ok(Object.keys(spec.perms).length > 0);
  const original = asMap(tensors);
  const permuted = permuteAll(tensors, spec, 1234);
  const y0 = forward(original);
  const y1 = forward(permuted);
  const scale = Math.max(1, ...Array.from(y0, Math.abs));
  assert.ok(maxDiff(y0, y1) < 1e-9 * scale, `outputs differ by ${maxDiff(y0, y1)}`);
  assert.ok(tensors.some((t) => maxDiff(Float64Array.from(t.data), Float64Array.from(get(permuted, t.name).data)) > 0), 'weights moved');

  const axis = spec.axes[victim].findIndex((p) => p !== null);
  assert.ok(axis >= 0, `${victim} is permuted`);
  const broken = new Map(original);
  const v = get(original, victim);
  broken.set(victim, take(v, randomPerm(v.shape[axis], seededRandom(99)), axis));
  assert.ok(maxDiff(y0, forward(broken)) > 1e-6, 'permuting one tensor alone changes the output');
}

describe('inferred specs preserve the function', () => {
  it('MLP (784-512-512-10 shaped, small)', () => {
    const tensors = mlpStateDict({ sizes: [20, 32, 24, 5], seed: 11 });
    const x = randomInput(4 * 20, 1);
    assertPreserved(tensors, (w) => mlpForward(w, ['layers.0', 'layers.1', 'layers.2'], x, 4), 'layers.1.weight');
  });
  it('MLP with fc1/fc2/fc3 naming', () => {
    const tensors = mlpStateDict({ sizes: [12, 16, 16, 3], naming: 'fc', seed: 12 });
    const x = randomInput(3 * 12, 2);
    assertPreserved(tensors, (w) => mlpForward(w, ['fc1', 'fc2', 'fc3'], x, 3), 'fc2.bias');
  });
  it('VGG-like with BatchNorm, 1x1 flatten', () => {
    const cfg = [4, 'M', 8, 8, 'M'] as const;
    const tensors = vggStateDict({ cfg, hidden: [12], numClasses: 5, spatial: 1, seed: 13 });
    const img = randomInput(3 * 4 * 4, 3);
    assertPreserved(tensors, (w) => vggForward(w, cfg, img, 4, ['classifier.0', 'classifier.3']), 'features.5.running_mean');
  });
  it('VGG-like with BatchNorm, 2x2 flatten (last conv unpermuted)', () => {
    const cfg = [4, 'M', 6, 'M'] as const;
    const tensors = vggStateDict({ cfg, hidden: [10], numClasses: 3, spatial: 2, seed: 14 });
    const img = randomInput(3 * 8 * 8, 4);
    assertPreserved(tensors, (w) => vggForward(w, cfg, img, 8, ['classifier.0', 'classifier.3']), 'features.1.weight');
  });
  it('torchvision basic-block ResNet with downsample', () => {
    const tensors = resnetStateDict({ block: 'basic', layers: [2, 1], widths: [4, 8], numClasses: 3, seed: 15 });
    const img = randomInput(3 * 16 * 16, 5);
    assertPreserved(tensors, (w) => resnetForward(w, img, 16, false), 'layer2.0.downsample.1.weight');
  });
  it('bottleneck ResNet-50-like stages', () => {
    const tensors = resnetStateDict({ block: 'bottleneck', layers: [2, 1], widths: [4, 6], numClasses: 3, seed: 16 });
    const img = randomInput(3 * 16 * 16, 6);
    assertPreserved(tensors, (w) => resnetForward(w, img, 16, false), 'layer1.1.conv2.weight');
  });
  it('CIFAR ResNet-20 option A (padding shortcuts)', () => {
    const tensors = cifarResnetStateDict({ shortcut: 'A', depth: 8, widths: [4, 8, 16], seed: 17 });
    const img = randomInput(3 * 8 * 8, 7);
    assertPreserved(tensors, (w) => resnetForward(w, img, 8, true), 'layer2.0.bn1.running_var');
  });
  it('CIFAR ResNet-20 option B (conv shortcuts)', () => {
    const tensors = cifarResnetStateDict({ shortcut: 'B', depth: 8, widths: [4, 8, 16], seed: 18 });
    const img = randomInput(3 * 8 * 8, 8);
    assertPreserved(tensors, (w) => resnetForward(w, img, 8, true), 'layer3.0.shortcut.0.weight');
  });
  it('GPT-2 (LayerNorm, Conv1D, causal attention, tied lm_head)', () => {
    const tensors = gpt2StateDict({ layers: 2, dModel: 16, vocab: 11, positions: 8, seed: 19, maskBuffers: true });
    assertPreserved(tensors, (w) => gpt2Forward(w, [3, 1, 4, 1, 5], 2, 4), 'transformer.h.1.mlp.c_fc.bias', { heads: 4 });
  });
  it('GPT-2 with the tied lm_head left out of the file', () => {
    const tensors = gpt2StateDict({ layers: 1, dModel: 8, vocab: 9, positions: 6, seed: 22, lmHead: false });
    assertPreserved(tensors, (w) => gpt2Forward(w, [0, 8, 2], 1, 2), 'transformer.wpe.weight', { heads: 2 });
  });
  it('Llama (RMSNorm, rotary, grouped-query attention, SwiGLU)', () => {
    const tensors = llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 11, seed: 20 });
    assertPreserved(tensors, (w) => llamaForward(w, [2, 7, 1, 8], 2, 4, 2), 'model.layers.0.input_layernorm.weight', { heads: 4, kvHeads: 2 });
  });
  it('BERT (post-LN, pooler, sequence classifier)', () => {
    const tensors = bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 11, positions: 8, classifier: 3, seed: 21 });
    assertPreserved(tensors, (w) => bertForward(w, [1, 5, 9, 2], 2, 4), 'bert.encoder.layer.0.attention.output.LayerNorm.bias', { heads: 4 });
  });
});

describe('inferred MLP specs preserve the function for any widths and naming', () => {
  it('holds for random MLPs (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 2, maxLength: 6 }),
        fc.constantFrom('layers', 'fc', 'sequential', 'model.fc'),
        fc.integer({ min: 1, max: 1e6 }),
        (sizes, naming, seed) => {
          const tensors = mlpStateDict({ sizes, naming, seed });
          const spec = inferSpec(shapesOf(tensors)).spec;
          const names = sizes.slice(1).map((_, i) => mlpLayerName(naming, i));
          const x = randomInput(2 * sizes[0], seed);
          const y0 = mlpForward(asMap(tensors), names, x, 2);
          const y1 = mlpForward(permuteAll(tensors, spec, seed + 1), names, x, 2);
          return maxDiff(y0, y1) < 1e-9 * Math.max(1, ...Array.from(y0, Math.abs));
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });
});
