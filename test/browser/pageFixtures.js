// Page-side test data builders (plain JS, loaded by the browser-test pages before the bundle).
// Built in the page so large Float32Arrays never cross the test-driver boundary.
(function () {
  'use strict';
  // Deterministic pseudo-random numbers (mulberry32).
  function rng(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function shuffled(n, seed) {
    const r = rng(seed);
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      const t = p[i]; p[i] = p[j]; p[j] = t;
    }
    return p;
  }
  // B is a permuted copy of A: before = similarity with a scattered bright cell per row at
  // column perm[i]; after (B reordered by perm) = identity-like with a bright diagonal.
  function heatmap(name, n, seed) {
    const perm = shuffled(n, seed);
    const r = rng(seed + 1);
    const before = new Float32Array(n * n);
    const after = new Float32Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const noise = (r() - 0.5) * 0.3;
        after[i * n + j] = (i === j ? 1 : 0) + noise;
      }
    }
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) before[i * n + perm[k]] = after[i * n + k];
    return { name, size: n, perm, before, after };
  }
  function curve() {
    const lambdas = Array.from({ length: 11 }, (_, i) => i / 10);
    const bump = (h) => lambdas.map((l) => 0.1 + h * 4 * l * (1 - l));
    return {
      lambdas,
      naive: { loss: bump(1.2), acc: lambdas.map((l) => 0.97 - 0.6 * 4 * l * (1 - l)) },
      aligned: { loss: bump(0.08), acc: lambdas.map((l) => 0.97 - 0.02 * 4 * l * (1 - l)) },
      barrier: { naive: 1.2, aligned: 0.08 },
    };
  }
  function alignmentState(opts) {
    const o = opts || {};
    const sizes = o.sizes || [64, 32];
    const heatmaps = sizes.map((n, g) => heatmap('P_' + g, n, 17 + g));
    const groups = heatmaps.map((h) => ({
      name: h.name,
      size: h.size,
      moved: h.perm.filter((p, i) => p !== i).length,
      objectiveBefore: 1.5 * h.size,
      objectiveAfter: 3.2 * h.size,
    }));
    const s = {
      title: o.title || 'Align mlp_b onto mlp_a',
      a: { name: 'mlp_a.safetensors', path: '/home/user/models/mlp_a.safetensors' },
      b: { name: 'mlp_b.safetensors', path: '/home/user/models/mlp_b.safetensors' },
      out: { name: 'mlp_b.aligned.safetensors', path: '/home/user/models/mlp_b.aligned.safetensors' },
      method: 'weight',
      backend: 'wasm',
      seconds: 1.84,
      iterations: 7,
      objectiveBefore: groups.reduce((a, g) => a + g.objectiveBefore, 0),
      objectiveAfter: groups.reduce((a, g) => a + g.objectiveAfter, 0),
      groups,
      heatmaps,
    };
    if (o.distance) s.distance = { naive: 41.3, aligned: 23.9 };
    else s.curve = curve();
    return s;
  }
  function runs() {
    return [
      { id: 'r1', kind: 'barrier', a: 'mlp_a', b: 'mlp_b', method: 'weight', createdAt: '2026-11-22T10:00:00Z', backend: 'wasm', seconds: 12.5, barrier: { naive: 1.2, aligned: 0.08 }, curve: curve() },
      { id: 'r2', kind: 'align', a: 'mlp_a', b: 'mlp_c', method: 'weight', createdAt: '2026-11-22T11:00:00Z', backend: 'wasm', seconds: 0.9, out: '/w/mlp_c.aligned.safetensors' },
      { id: 'r3', kind: 'merge', a: 'mlp_a', b: 'mlp_b', others: ['mlp_c'], method: 'mergemany', createdAt: '2026-11-22T09:00:00Z', backend: 'cpu', seconds: 3.1, out: 'mlp_a.merged.safetensors', folder: 'models', seed: 0 },
    ];
  }
  function inspectorState(opts) {
    const o = opts || {};
    const layers = o.layers || 4;
    const tensors = [];
    let off = 0;
    const push = (name, dtype, shape, bytesPer) => {
      const n = shape.reduce((a, b) => a * b, 1);
      tensors.push({ name, dtype, shape, offsets: [off, off + n * bytesPer] });
      off += n * bytesPer;
    };
    for (let l = 0; l < layers; l++) {
      push('layers.' + l + '.weight', 'F32', [512, l === 0 ? 784 : 512], 4);
      push('layers.' + l + '.bias', 'F32', [512], 4);
    }
    push('head.weight', 'F16', [10, 512], 2);
    push('head.bias', 'F16', [10], 2);
    push('step', 'I64', [], 8);
    const extra = o.extra || 0;
    for (let k = 0; k < extra; k++) push('blocks.' + (k % 200) + '.attn.w' + Math.floor(k / 200), 'BF16', [8, 8], 2);
    const perms = {};
    for (let l = 0; l < layers; l++) perms['P_' + l] = 512;
    return {
      path: '/home/user/models/mlp_a.safetensors',
      format: 'safetensors',
      metadata: { format: 'pt', note: 'trained <b>seed 0</b>' },
      tensors,
      totalParams: tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0),
      totalBytes: off,
      architecture: { family: 'mlp', perms, symmetryLog10: layers * 1166.0, notes: ['Hidden layers permute independently.'] },
    };
  }
  function stats(tensor) {
    const counts = Array.from({ length: 32 }, (_, i) => Math.round(1000 * Math.exp(-((i - 15.5) ** 2) / 40)));
    const edges = Array.from({ length: 33 }, (_, i) => -0.2 + (0.4 * i) / 32);
    return { tensor, count: 262144, min: -0.2, max: 0.2, mean: 0.0012, std: 0.05, nanCount: 0, infCount: 0, histogram: { edges, counts } };
  }
  window.fixtures = { alignmentState, heatmap, curve, runs, inspectorState, stats };
})();
