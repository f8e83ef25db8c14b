// The panel's live curve: points streamed in any order become the curve of the λs done on both
// paths, whose barriers equal the final ones once every point is in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barrierFromCurve, coarseToFine, lambdaGrid } from '../../../src/core/barrier';
import { CurveAssembler } from '../../../src/core/curveAssembler';
import type { CurvePoint } from '../../../src/core/checkpoint';
import { mulberry32 } from '../../../src/core/matching/prng';

const lambdas = lambdaGrid(9);
const naiveLoss = lambdas.map((l) => 0.1 + 2 * l * (1 - l));
const alignedLoss = lambdas.map((l) => 0.1 + 0.2 * l * (1 - l));
const points: CurvePoint[] = lambdas.flatMap((lambda, i) => [
  { lambda, loss: naiveLoss[i], acc: 0.9 - naiveLoss[i] / 10, path: 'naive' as const, split: 'test' as const },
  { lambda, loss: alignedLoss[i], acc: 0.95, path: 'aligned' as const, split: 'test' as const },
]);

test('points in any order: the partial curve holds the λs done on both paths, the full one equals the final curve', () => {
  const rand = mulberry32(3);
  const shuffled = [...points].sort(() => rand() - 0.5);
  const c = new CurveAssembler(true);
  let previous = 0;
  for (const [k, p] of shuffled.entries()) {
    assert.equal(c.add(p), true);
    assert.equal(c.received, k + 1);
    const curve = c.curve();
    if (!curve) continue;
    assert.ok(curve.lambdas.length >= previous, 'the curve only grows');
    previous = curve.lambdas.length;
    assert.deepEqual([...curve.lambdas].sort((x, y) => x - y), curve.lambdas, 'sorted λs');
    for (const [i, l] of curve.lambdas.entries()) {
      const j = lambdas.indexOf(l);
      assert.equal(curve.naive.loss[i], naiveLoss[j]);
      assert.equal(curve.aligned!.loss[i], alignedLoss[j]);
    }
  }
  const full = c.curve()!;
  assert.deepEqual(full.lambdas, lambdas);
  assert.equal(full.barrier.naive, barrierFromCurve(lambdas, naiveLoss));
  assert.equal(full.barrier.aligned, barrierFromCurve(lambdas, alignedLoss));
});

test('fewer than two λs done on both paths give no curve; repeats and other splits are ignored', () => {
  const c = new CurveAssembler(true);
  assert.equal(c.add(points[0]), true); // naive λ=0
  assert.equal(c.add(points[2]), true); // naive λ=1/8
  assert.equal(c.curve(), undefined, 'no aligned point yet');
  assert.equal(c.add(points[1]), true); // aligned λ=0
  assert.equal(c.curve(), undefined, 'one λ on both paths');
  assert.equal(c.add(points[3]), true);
  assert.deepEqual(c.curve()!.lambdas, [0, 1 / 8]);
  assert.equal(c.add(points[3]), false, 'a repeated point');
  assert.equal(c.add({ ...points[4], split: 'train' }), false, 'a train point on a test curve');
  assert.equal(c.received, 4);
});

test('a naive-only run draws the naive path alone', () => {
  const c = new CurveAssembler(false);
  for (const p of points.filter((q) => q.path === 'naive')) c.add(p);
  const curve = c.curve()!;
  assert.equal(curve.aligned, undefined);
  assert.equal(curve.barrier.aligned, undefined);
  assert.deepEqual(curve.lambdas, lambdas);
});

test('λs are evaluated coarse to fine: both ends, the middle, the quarters…, each once', () => {
  assert.deepEqual(coarseToFine(9), [0, 8, 4, 2, 6, 1, 3, 5, 7]);
  assert.deepEqual(coarseToFine(2), [0, 1]);
  assert.deepEqual(coarseToFine(1), [0]);
  for (const n of [3, 25, 101, 201]) {
    const order = coarseToFine(n);
    assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), `${n}: every index once`);
    assert.deepEqual(order.slice(0, 3), [0, n - 1, Math.floor((n - 1) / 2)], `${n}: ends, then the middle`);
  }
  // A partial curve in this order spans the whole path: its barrier so far is a lower bound of the final one.
  const c = new CurveAssembler(true);
  const finalBarrier = barrierFromCurve(lambdas, naiveLoss);
  for (const i of coarseToFine(lambdas.length)) {
    c.add(points[2 * i]);
    c.add(points[2 * i + 1]);
    const curve = c.curve();
    if (!curve) continue;
    assert.deepEqual([curve.lambdas[0], curve.lambdas[curve.lambdas.length - 1]], [0, 1]);
    assert.ok(curve.barrier.naive <= finalBarrier + 1e-12);
  }
});
