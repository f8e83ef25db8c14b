/**
 * Plain-TypeScript float64 forward passes of the families spec inference knows (MLP, VGG,
 * ResNet, GPT-2, Llama, BERT), written from the PyTorch / Hugging Face definitions. They are
 * the references the spec tests (function kept under a permutation) and the tfjs forward-pass
 * tests compare against.
 */
import assert from 'node:assert/strict';

export interface T {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
export type W = ReadonlyMap<string, T>;

export function get(w: W, name: string): T {
  const t = w.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
}

// ------------------------------------------------------------------ math (float64)

/** x [rows, inp] . W^T (W [out, inp]) + b */
export function linear(x: Float64Array, rows: number, w: T, b?: T): Float64Array {
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
export function conv1d(x: Float64Array, rows: number, w: T, b: T): Float64Array {
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

export const relu = (x: Float64Array): Float64Array => x.map((v) => Math.max(0, v));
export const gelu = (x: Float64Array): Float64Array => x.map((v) => 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v ** 3))));
export const silu = (v: number): number => v / (1 + Math.exp(-v));

export function layerNorm(x: Float64Array, rows: number, w: T, b: T | undefined, rms: boolean): Float64Array {
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
export function attention(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, heads: number, kvHeads: number, hd: number, causal: boolean): Float64Array {
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
export function conv2d(x: Float64Array, c: number, h: number, wd: number, w: T, b: T | undefined, stride: number, pad: number): { y: Float64Array; h: number; w: number } {
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
export function batchNorm(x: Float64Array, c: number, hw: number, w: W, p: string): Float64Array {
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

export function maxPool(x: Float64Array, c: number, h: number, wd: number, k: number, stride: number, pad: number): { y: Float64Array; h: number; w: number } {
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

export function globalAvg(x: Float64Array, c: number, hw: number): Float64Array {
  const y = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < hw; i++) y[ch] += x[ch * hw + i] / hw;
  return y;
}

// ------------------------------------------------------------------ forward passes

export function mlpForward(w: W, layers: readonly string[], x: Float64Array, rows: number): Float64Array {
  let h = x;
  layers.forEach((l, i) => {
    h = linear(h, rows, get(w, `${l}.weight`), w.get(`${l}.bias`));
    if (i < layers.length - 1) h = relu(h);
  });
  return h;
}

export function vggForward(w: W, cfg: readonly (number | 'M')[], img: Float64Array, size: number, classifier: readonly string[]): Float64Array {
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

/**
 * torchvision ResNet (7x7/2 stem, 3x3/2 max pool) or, with `smallStem`, a 3x3/1 stem and no max
 * pool (CIFAR ports, and torchvision nets adapted to small images); option-A or -B shortcuts.
 * One image [C, size, size]; C is the stem's input channels.
 */
export function resnetForward(w: W, img: Float64Array, size: number, smallStem: boolean): Float64Array {
  const inC = get(w, 'conv1.weight').shape[1];
  let { y: x, h, w: wd } = conv2d(img, inC, size, size, get(w, 'conv1.weight'), undefined, smallStem ? 1 : 2, smallStem ? 1 : 3);
  let c = get(w, 'conv1.weight').shape[0];
  x = relu(batchNorm(x, c, h * wd, w, 'bn1'));
  if (!smallStem) ({ y: x, h, w: wd } = maxPool(x, c, h, wd, 3, 2, 1));
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

export function gpt2Forward(w: W, tokens: readonly number[], layers: number, heads: number): Float64Array {
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
export function rotary(x: Float64Array, rows: number, heads: number, hd: number): Float64Array {
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

export function llamaForward(w: W, tokens: readonly number[], layers: number, heads: number, kvHeads: number): Float64Array {
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
export function bertForward(w: W, tokens: readonly number[], layers: number, heads: number): Float64Array {
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
