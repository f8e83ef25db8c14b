/**
 * Function preservation: permuting every tensor by a random permutation under the inferred
 * spec must leave the network's outputs unchanged (Git Re-Basin section 2). Plain-TS forward
 * passes in float64 over the builders' state dicts; a local gather helper applies the spec
 * (the project's own permute lives in src/core/matching). A negative control checks each
 * forward pass notices a permutation applied to one tensor only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PermSpec } from '../../src/core/checkpoint';
import { inferSpec } from '../../src/core/spec';
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
} from './helpers/stateDicts';

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
  for (const [name, n] of Object.entries(spec.perms)) perms[name] = randomPerm(n, rand);
  const out: W = new Map();
  for (const t of tensors) {
    let cur: T = t;
    spec.axes[t.name].forEach((p, axis) => {
      if (p !== null) cur = take(cur, perms[p], axis);
    });
    out.set(t.name, cur);
  }
  return out;
}

const asMap = (tensors: readonly StateTensor[]): W => new Map(tensors.map((t) => [t.name, t]));

function get(w: W, name: string): T {
  const t = w.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
}

// ------------------------------------------------------------------ math (float64)

/** x [rows, inp] . W^T (W [out, inp]) + b */
function linear(x: Float64Array, rows: number, w: T, b?: T): Float64Array {
  const [out, inp] = w.shape;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  }
  return y;
}

/** GPT-2 Conv1D: x [rows, in] . W (W [in, out]) + b */
function conv1d(x: Float64Array, rows: number, w: T, b: T): Float64Array {
  const [inp, out] = w.shape;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let s = b.data[o];
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[i * out + o];
      y[r * out + o] = s;
    }
  }
  return y;
}

const relu = (x: Float64Array): Float64Array => x.map((v) => Math.max(0, v));
const gelu = (x: Float64Array): Float64Array => x.map((v) => 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v ** 3))));
const silu = (v: number): number => v / (1 + Math.exp(-v));

function layerNorm(x: Float64Array, rows: number, w: T, b: T | undefined, rms: boolean): Float64Array {
  const d = w.shape[0];
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const mean = rms ? 0 : row.reduce((a, v) => a + v, 0) / d;
    const v = row.reduce((a, u) => a + (u - mean) ** 2, 0) / d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((row[i] - mean) / Math.sqrt(v + 1e-5)) * w.data[i] + (b ? b.data[i] : 0);
  }
  return y;
}

/** Softmax attention per head over rows (tokens); q/k/v [rows, heads*hd] / [rows, kvHeads*hd]. */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, heads: number, kvHeads: number, hd: number, causal: boolean): Float64Array {
  const out = new Float64Array(rows * heads * hd);
  for (let h = 0; h < heads; h++) {
    const kh = Math.floor(h / (heads / kvHeads));
    for (let i = 0; i < rows; i++) {
      const scores: number[] = [];
      const last = causal ? i : rows - 1;
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[i * heads * hd + h * hd + e] * k[j * kvHeads * hd + kh * hd + e];
        scores.push(s / Math.sqrt(hd));
      }
      const m = Math.max(...scores);
      const ex = scores.map((s) => Math.exp(s - m));
      const z = ex.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= last; j++) {
        for (let e = 0; e < hd; e++) out[i * heads * hd + h * hd + e] += (ex[j] / z) * v[j * kvHeads * hd + kh * hd + e];
      }
    }
  }
  return out;
}

/** Conv2d of one image x [C, H, W], weight [O, C, k, k], zero padding. */
function conv2d(x: Float64Array, c: number, h: number, wd: number, w: T, b: T | undefined, stride: number, pad: number): { y: Float64Array; h: number; w: number } {
  const [o, ci, k] = w.shape;
  assert.equal(ci, c);
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(o * ho * wo);
  for (let oc = 0; oc < o; oc++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let s = b ? b.data[oc] : 0;
        for (let cc = 0; cc < c; cc++) {
          for (let a = 0; a < k; a++) {
            const yi = i * stride + a - pad;
            if (yi < 0 || yi >= h) continue;
            for (let bb = 0; bb < k; bb++) {
              const xj = j * stride + bb - pad;
              if (xj < 0 || xj >= wd) continue;
              s += x[(cc * h + yi) * wd + xj] * w.data[((oc * c + cc) * k + a) * k + bb];
            }
          }
        }
        y[(oc * ho + i) * wo + j] = s;
      }
    }
  }
  return { y, h: ho, w: wo };
}

/** BatchNorm in eval mode with running statistics. */
function batchNorm(x: Float64Array, c: number, hw: number, w: W, p: string): Float64Array {
  const g = get(w, `${p}.weight`).data;
  const b = get(w, `${p}.bias`).data;
  const m = get(w, `${p}.running_mean`).data;
  const v = get(w, `${p}.running_var`).data;
  const y = new Float64Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    const s = g[ch] / Math.sqrt(v[ch] + 1e-5);
    for (let i = 0; i < hw; i++) y[ch * hw + i] = (x[ch * hw + i] - m[ch]) * s + b[ch];
  }
  return y;
}

function maxPool(x: Float64Array, c: number, h: number, wd: number, k: number, stride: number, pad: number): { y: Float64Array; h: number; w: number } {
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(c * ho * wo).fill(-Infinity);
  for (let ch = 0; ch < c; ch++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++)
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            const yi = i * stride + a - pad;
            const xj = j * stride + b - pad;
            if (yi >= 0 && yi < h && xj >= 0 && xj < wd) y[(ch * ho + i) * wo + j] = Math.max(y[(ch * ho + i) * wo + j], x[(ch * h + yi) * wd + xj]);
          }
  return { y, h: ho, w: wo };
}

function globalAvg(x: Float64Array, c: number, hw: number): Float64Array {
  const y = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < hw; i++) y[ch] += x[ch * hw + i] / hw;
  return y;
}

// ------------------------------------------------------------------ forward passes

function mlpForward(w: W, layers: readonly string[], x: Float64Array, rows: number): Float64Array {
  let h = x;
  layers.forEach((l, i) => {
    h = linear(h, rows, get(w, `${l}.weight`), w.get(`${l}.bias`));
    if (i < layers.length - 1) h = relu(h);
  });
  return h;
}

function vggForward(w: W, cfg: readonly (number | 'M')[], img: Float64Array, size: number, classifier: readonly string[]): Float64Array {
  let x = img;
  let c = 3;
  let h = size;
  let wd = size;
  let idx = 0;
  for (const v of cfg) {
    if (v === 'M') {
      ({ y: x, h, w: wd } = maxPool(x, c, h, wd, 2, 2, 0));
      idx += 1;
      continue;
    }
    ({ y: x, h, w: wd } = conv2d(x, c, h, wd, get(w, `features.${idx}.weight`), w.get(`features.${idx}.bias`), 1, 1));
    c = v;
    x = relu(batchNorm(x, c, h * wd, w, `features.${idx + 1}`));
    idx += 3;
  }
  return mlpForward(w, classifier, x, 1);
}

/** torchvision ResNet (7x7/2 stem, 3x3/2 max pool) or a CIFAR port (3x3 stem; option-A or -B shortcuts). */
function resnetForward(w: W, img: Float64Array, size: number, cifar: boolean): Float64Array {
  let { y: x, h, w: wd } = conv2d(img, 3, size, size, get(w, 'conv1.weight'), undefined, cifar ? 1 : 2, cifar ? 1 : 3);
  let c = get(w, 'conv1.weight').shape[0];
  x = relu(batchNorm(x, c, h * wd, w, 'bn1'));
  if (!cifar) ({ y: x, h, w: wd } = maxPool(x, c, h, wd, 3, 2, 1));
  const blocks = [...new Set([...w.keys()].map((n) => /^(layer\d+\.\d+)\./.exec(n)?.[1]).filter((b): b is string => !!b))].sort((a, b) =>
    a.localeCompare(b, 'en', { numeric: true }),
  );
  for (const blk of blocks) {
    const stride = /^layer[2-9]\.0$/.test(blk) ? 2 : 1;
    const nConv = w.has(`${blk}.conv3.weight`) ? 3 : 2;
    let y = x;
    let yc = c;
    let yh = h;
    let yw = wd;
    for (let i = 1; i <= nConv; i++) {
      const kw = get(w, `${blk}.conv${i}.weight`);
      const s = (nConv === 2 && i === 1) || (nConv === 3 && i === 2) ? stride : 1;
      ({ y, h: yh, w: yw } = conv2d(y, yc, yh, yw, kw, undefined, s, (kw.shape[2] - 1) / 2));
      yc = kw.shape[0];
      y = batchNorm(y, yc, yh * yw, w, `${blk}.bn${i}`);
      if (i < nConv) y = relu(y);
    }
    let sc = x;
    const scName = w.has(`${blk}.downsample.0.weight`) ? `${blk}.downsample` : w.has(`${blk}.shortcut.0.weight`) ? `${blk}.shortcut` : null;
    if (scName) {
      ({ y: sc } = conv2d(x, c, h, wd, get(w, `${scName}.0.weight`), undefined, stride, 0));
      sc = batchNorm(sc, yc, yh * yw, w, `${scName}.1`);
    } else if (yc !== c) {
      // Option A (akamaster): x[:, :, ::2, ::2] zero-padded with planes/4 channels on each side.
      sc = new Float64Array(yc * yh * yw);
      const padC = yc / 4;
      for (let ch = 0; ch < c; ch++)
        for (let i = 0; i < yh; i++) for (let j = 0; j < yw; j++) sc[((ch + padC) * yh + i) * yw + j] = x[(ch * h + 2 * i) * wd + 2 * j];
    }
    x = relu(y.map((v, i) => v + sc[i]));
    c = yc;
    h = yh;
    wd = yw;
  }
  const head = w.has('fc.weight') ? 'fc' : 'linear';
  return linear(globalAvg(x, c, h * wd), 1, get(w, `${head}.weight`), w.get(`${head}.bias`));
}

function gpt2Forward(w: W, tokens: readonly number[], layers: number, heads: number): Float64Array {
  const wte = get(w, 'transformer.wte.weight');
  const wpe = get(w, 'transformer.wpe.weight');
  const d = wte.shape[1];
  const n = tokens.length;
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => {
    for (let e = 0; e < d; e++) x[i * d + e] = wte.data[t * d + e] + wpe.data[i * d + e];
  });
  for (let l = 0; l < layers; l++) {
    const p = `transformer.h.${l}`;
    const a = layerNorm(x, n, get(w, `${p}.ln_1.weight`), get(w, `${p}.ln_1.bias`), false);
    const qkv = conv1d(a, n, get(w, `${p}.attn.c_attn.weight`), get(w, `${p}.attn.c_attn.bias`));
    const split = (k: number): Float64Array => {
      const o = new Float64Array(n * d);
      for (let i = 0; i < n; i++) o.set(qkv.subarray(i * 3 * d + k * d, i * 3 * d + (k + 1) * d), i * d);
      return o;
    };
    const att = attention(split(0), split(1), split(2), n, heads, heads, d / heads, true);
    const proj = conv1d(att, n, get(w, `${p}.attn.c_proj.weight`), get(w, `${p}.attn.c_proj.bias`));
    x = x.map((v, i) => v + proj[i]);
    const m = layerNorm(x, n, get(w, `${p}.ln_2.weight`), get(w, `${p}.ln_2.bias`), false);
    const f = gelu(conv1d(m, n, get(w, `${p}.mlp.c_fc.weight`), get(w, `${p}.mlp.c_fc.bias`)));
    const o = conv1d(f, n, get(w, `${p}.mlp.c_proj.weight`), get(w, `${p}.mlp.c_proj.bias`));
    x = x.map((v, i) => v + o[i]);
  }
  x = layerNorm(x, n, get(w, 'transformer.ln_f.weight'), get(w, 'transformer.ln_f.bias'), false);
  // Hugging Face files often omit the tied lm_head: the logits then use wte.
  return linear(x, n, w.get('lm_head.weight') ?? wte);
}

/** Rotary embedding on [rows, heads*hd] (rotate-half convention, as Hugging Face Llama). */
function rotary(x: Float64Array, rows: number, heads: number, hd: number): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < heads; h++)
      for (let e = 0; e < half; e++) {
        const ang = r / 10000 ** ((2 * e) / hd);
        const a = x[r * heads * hd + h * hd + e];
        const b = x[r * heads * hd + h * hd + e + half];
        y[r * heads * hd + h * hd + e] = a * Math.cos(ang) - b * Math.sin(ang);
        y[r * heads * hd + h * hd + e + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
  return y;
}

function llamaForward(w: W, tokens: readonly number[], layers: number, heads: number, kvHeads: number): Float64Array {
  const emb = get(w, 'model.embed_tokens.weight');
  const d = emb.shape[1];
  const hd = d / heads;
  const n = tokens.length;
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => x.set(emb.data.subarray(t * d, (t + 1) * d), i * d));
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const a = layerNorm(x, n, get(w, `${p}.input_layernorm.weight`), undefined, true);
    const q = rotary(linear(a, n, get(w, `${p}.self_attn.q_proj.weight`)), n, heads, hd);
    const k = rotary(linear(a, n, get(w, `${p}.self_attn.k_proj.weight`)), n, kvHeads, hd);
    const v = linear(a, n, get(w, `${p}.self_attn.v_proj.weight`));
    const o = linear(attention(q, k, v, n, heads, kvHeads, hd, true), n, get(w, `${p}.self_attn.o_proj.weight`));
    x = x.map((u, i) => u + o[i]);
    const m = layerNorm(x, n, get(w, `${p}.post_attention_layernorm.weight`), undefined, true);
    const g = linear(m, n, get(w, `${p}.mlp.gate_proj.weight`));
    const u = linear(m, n, get(w, `${p}.mlp.up_proj.weight`));
    const dn = linear(g.map((gv, i) => silu(gv) * u[i]), n, get(w, `${p}.mlp.down_proj.weight`));
    x = x.map((xv, i) => xv + dn[i]);
  }
  x = layerNorm(x, n, get(w, 'model.norm.weight'), undefined, true);
  return linear(x, n, get(w, 'lm_head.weight'));
}

/** BertForSequenceClassification: returns the classifier logits (from the pooled first token). */
function bertForward(w: W, tokens: readonly number[], layers: number, heads: number): Float64Array {
  const p = 'bert.';
  const we = get(w, `${p}embeddings.word_embeddings.weight`);
  const pe = get(w, `${p}embeddings.position_embeddings.weight`);
  const te = get(w, `${p}embeddings.token_type_embeddings.weight`);
  const d = we.shape[1];
  const n = tokens.length;
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => {
    for (let e = 0; e < d; e++) x[i * d + e] = we.data[t * d + e] + pe.data[i * d + e] + te.data[e];
  });
  const ln = (y: Float64Array, name: string): Float64Array => layerNorm(y, n, get(w, `${name}.weight`), get(w, `${name}.bias`), false);
  x = ln(x, `${p}embeddings.LayerNorm`);
  for (let l = 0; l < layers; l++) {
    const b = `${p}encoder.layer.${l}`;
    const lin = (y: Float64Array, name: string): Float64Array => linear(y, n, get(w, `${name}.weight`), get(w, `${name}.bias`));
    const att = attention(lin(x, `${b}.attention.self.query`), lin(x, `${b}.attention.self.key`), lin(x, `${b}.attention.self.value`), n, heads, heads, d / heads, false);
    const ao = lin(att, `${b}.attention.output.dense`);
    x = ln(x.map((v, i) => v + ao[i]), `${b}.attention.output.LayerNorm`);
    const o = lin(gelu(lin(x, `${b}.intermediate.dense`)), `${b}.output.dense`);
    x = ln(x.map((v, i) => v + o[i]), `${b}.output.LayerNorm`);
  }
  const pooled = linear(x.subarray(0, d), 1, get(w, `${p}pooler.dense.weight`), get(w, `${p}pooler.dense.bias`)).map(Math.tanh);
  return linear(pooled, 1, get(w, 'classifier.weight'), get(w, 'classifier.bias'));
}

// ------------------------------------------------------------------ checks

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
function assertPreserved(tensors: StateTensor[], forward: (w: W) => Float64Array, victim: string): void {
  const spec = inferSpec(shapesOf(tensors)).spec;
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
    assertPreserved(tensors, (w) => gpt2Forward(w, [3, 1, 4, 1, 5], 2, 4), 'transformer.h.1.mlp.c_fc.bias');
  });
  it('GPT-2 with the tied lm_head left out of the file', () => {
    const tensors = gpt2StateDict({ layers: 1, dModel: 8, vocab: 9, positions: 6, seed: 22, lmHead: false });
    assertPreserved(tensors, (w) => gpt2Forward(w, [0, 8, 2], 1, 2), 'transformer.wpe.weight');
  });
  it('Llama (RMSNorm, rotary, grouped-query attention, SwiGLU)', () => {
    const tensors = llamaStateDict({ layers: 2, dModel: 16, heads: 4, kvHeads: 2, intermediate: 20, vocab: 11, seed: 20 });
    assertPreserved(tensors, (w) => llamaForward(w, [2, 7, 1, 8], 2, 4, 2), 'model.layers.0.input_layernorm.weight');
  });
  it('BERT (post-LN, pooler, sequence classifier)', () => {
    const tensors = bertStateDict({ layers: 2, dModel: 16, intermediate: 24, vocab: 11, positions: 8, classifier: 3, seed: 21 });
    assertPreserved(tensors, (w) => bertForward(w, [1, 5, 9, 2], 2, 4), 'bert.encoder.layer.0.attention.output.LayerNorm.bias');
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
