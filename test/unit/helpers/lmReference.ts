/**
 * Plain float64 language-model forward passes, one token sequence at a time, written from the
 * Hugging Face modelling code (GPT2LMHeadModel, LlamaForCausalLM and relatives, BertForMaskedLM)
 * with every config option the engine reads spelled out as a parameter; plus random state
 * dicts for them and the LM losses computed plainly from float64 logits. The tfjs forward
 * passes (src/engine/lm) and the LM evaluation are tested against these.
 */
import { mulberry32 } from '../../../src/core/matching/prng';

export interface RefTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}
export type RefWeights = ReadonlyMap<string, RefTensor>;

function get(w: RefWeights, name: string): RefTensor {
  const t = w.get(name);
  if (!t) throw new Error(`reference: no tensor ${name}`);
  return t;
}

// ------------------------------------------------------------------ float64 math

/** x [rows, in] times a PyTorch Linear weight [out, in], plus bias. */
function linear(x: Float64Array, rows: number, w: RefTensor, b?: RefTensor): Float64Array {
  const [out, inp] = w.shape;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[o * inp + i];
      y[r * out + o] = s;
    }
  return y;
}

/** x [rows, in] times a GPT-2 Conv1D weight [in, out], plus bias. */
function conv1d(x: Float64Array, rows: number, w: RefTensor, b?: RefTensor): Float64Array {
  const [inp, out] = w.shape;
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o] : 0;
      for (let i = 0; i < inp; i++) s += x[r * inp + i] * w.data[i * out + o];
      y[r * out + o] = s;
    }
  return y;
}

function norm(x: Float64Array, rows: number, d: number, eps: number, rms: boolean, weight: RefTensor, bias?: RefTensor, plusOne = false): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    if (!rms) {
      for (let i = 0; i < d; i++) mean += x[r * d + i];
      mean /= d;
    }
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - mean) ** 2;
    v /= d;
    for (let i = 0; i < d; i++) {
      const g = weight.data[i] + (plusOne ? 1 : 0);
      y[r * d + i] = ((x[r * d + i] - mean) / Math.sqrt(v + eps)) * g + (bias ? bias.data[i] : 0);
    }
  }
  return y;
}

/** erf by Abramowitz-Stegun 7.1.26 is too coarse for 1e-6; a series / continued fraction is used instead. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export type RefAct = 'gelu' | 'gelu_tanh' | 'relu' | 'silu';

function act(v: number, kind: RefAct): number {
  switch (kind) {
    case 'gelu':
      return 0.5 * v * (1 + erf(v / Math.SQRT2));
    case 'gelu_tanh':
      return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    case 'relu':
      return Math.max(0, v);
    case 'silu':
      return v / (1 + Math.exp(-v));
  }
}

/** Softmax attention of one sequence; query head h reads key/value head floor(h / (heads / kvHeads)). */
function attend(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, heads: number, kvHeads: number, hd: number, causal: boolean, scale: number): Float64Array {
  const out = new Float64Array(rows * heads * hd);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / (heads / kvHeads));
    for (let i = 0; i < rows; i++) {
      const last = causal ? i : rows - 1;
      const scores: number[] = [];
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[(i * heads + h) * hd + e] * k[(j * kvHeads + g) * hd + e];
        scores.push(s * scale);
      }
      const m = Math.max(...scores);
      const ex = scores.map((s) => Math.exp(s - m));
      const z = ex.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= last; j++) for (let e = 0; e < hd; e++) out[(i * heads + h) * hd + e] += (ex[j] / z) * v[(j * kvHeads + g) * hd + e];
    }
  }
  return out;
}

const addInto = (x: Float64Array, y: Float64Array): Float64Array => x.map((v, i) => v + y[i]);

// ------------------------------------------------------------------ GPT-2

export interface RefGpt2 {
  readonly layers: number;
  readonly heads: number;
  readonly eps: number;
  readonly act: RefAct;
  /** Logits through wte (tied) rather than lm_head. */
  readonly tied: boolean;
  readonly scaleAttnWeights?: boolean;
  readonly scaleAttnByLayer?: boolean;
  readonly prefix?: string;
}

export function gpt2Logits(w: RefWeights, tokens: readonly number[], c: RefGpt2): Float64Array {
  const p = c.prefix ?? 'transformer.';
  const wte = get(w, `${p}wte.weight`);
  const wpe = get(w, `${p}wpe.weight`);
  const d = wte.shape[1];
  const n = tokens.length;
  const hd = d / c.heads;
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => {
    for (let e = 0; e < d; e++) x[i * d + e] = wte.data[t * d + e] + wpe.data[i * d + e];
  });
  for (let l = 0; l < c.layers; l++) {
    const h = `${p}h.${l}`;
    const a = norm(x, n, d, c.eps, false, get(w, `${h}.ln_1.weight`), w.get(`${h}.ln_1.bias`));
    const qkv = conv1d(a, n, get(w, `${h}.attn.c_attn.weight`), w.get(`${h}.attn.c_attn.bias`));
    const part = (k: number): Float64Array => {
      const o = new Float64Array(n * d);
      for (let i = 0; i < n; i++) for (let e = 0; e < d; e++) o[i * d + e] = qkv[i * 3 * d + k * d + e];
      return o;
    };
    let scale = (c.scaleAttnWeights ?? true) ? 1 / Math.sqrt(hd) : 1;
    if (c.scaleAttnByLayer) scale /= l + 1;
    const att = attend(part(0), part(1), part(2), n, c.heads, c.heads, hd, true, scale);
    x = addInto(x, conv1d(att, n, get(w, `${h}.attn.c_proj.weight`), w.get(`${h}.attn.c_proj.bias`)));
    const m = norm(x, n, d, c.eps, false, get(w, `${h}.ln_2.weight`), w.get(`${h}.ln_2.bias`));
    const f = conv1d(m, n, get(w, `${h}.mlp.c_fc.weight`), w.get(`${h}.mlp.c_fc.bias`)).map((v) => act(v, c.act));
    x = addInto(x, conv1d(f, n, get(w, `${h}.mlp.c_proj.weight`), w.get(`${h}.mlp.c_proj.bias`)));
  }
  x = norm(x, n, d, c.eps, false, get(w, `${p}ln_f.weight`), w.get(`${p}ln_f.bias`));
  return linear(x, n, c.tied ? wte : get(w, 'lm_head.weight'));
}

// ------------------------------------------------------------------ Llama family

export interface RefRope {
  readonly theta: number;
  readonly type: 'default' | 'linear' | 'dynamic' | 'llama3';
  readonly factor?: number;
  readonly original?: number;
  readonly low?: number;
  readonly high?: number;
  /** max_position_embeddings (dynamic scaling's reference length). */
  readonly maxPositions?: number;
}

export interface RefLlama {
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly eps: number;
  readonly act: RefAct;
  readonly tied: boolean;
  readonly rope: RefRope;
  readonly gemma?: boolean;
}

/** Inverse frequencies in float64, from the formulas of transformers' modeling_rope_utils. */
export function refInvFreq(r: RefRope, dim: number, seq: number): number[] {
  let theta = r.theta;
  if (r.type === 'dynamic') {
    const max = r.maxPositions!;
    const s = Math.max(seq, max);
    theta = theta * ((r.factor! * s) / max - (r.factor! - 1)) ** (dim / (dim - 2));
  }
  const base = Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim));
  if (r.type === 'linear') return base.map((f) => f / r.factor!);
  if (r.type === 'llama3') {
    const lowWl = r.original! / r.low!;
    const highWl = r.original! / r.high!;
    return base.map((f) => {
      const wl = (2 * Math.PI) / f;
      if (wl < highWl) return f;
      if (wl > lowWl) return f / r.factor!;
      const s = (r.original! / wl - r.low!) / (r.high! - r.low!);
      return (1 - s) * (f / r.factor!) + s * f;
    });
  }
  return base;
}

/** Rotate-half rotary embedding of [rows, heads * hd]. */
function rotary(x: Float64Array, rows: number, heads: number, hd: number, inv: readonly number[]): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < heads; h++)
      for (let e = 0; e < half; e++) {
        const ang = r * inv[e];
        const a = x[(r * heads + h) * hd + e];
        const b = x[(r * heads + h) * hd + e + half];
        y[(r * heads + h) * hd + e] = a * Math.cos(ang) - b * Math.sin(ang);
        y[(r * heads + h) * hd + e + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
  return y;
}

export function llamaLogits(w: RefWeights, tokens: readonly number[], c: RefLlama): Float64Array {
  const emb = get(w, 'model.embed_tokens.weight');
  const d = emb.shape[1];
  const n = tokens.length;
  const hd = c.headDim;
  const inv = refInvFreq(c.rope, hd, n);
  const gemma = c.gemma ?? false;
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => {
    for (let e = 0; e < d; e++) x[i * d + e] = emb.data[t * d + e] * (gemma ? Math.sqrt(d) : 1);
  });
  const rms = (y: Float64Array, rows: number, width: number, name: string): Float64Array => norm(y, rows, width, c.eps, true, get(w, name), undefined, gemma);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const lin = (y: Float64Array, name: string): Float64Array => linear(y, n, get(w, `${p}.${name}.weight`), w.get(`${p}.${name}.bias`));
    const a = rms(x, n, d, `${p}.input_layernorm.weight`);
    let q = lin(a, 'self_attn.q_proj');
    let k = lin(a, 'self_attn.k_proj');
    if (w.has(`${p}.self_attn.q_norm.weight`)) {
      q = rms(q, n * c.heads, hd, `${p}.self_attn.q_norm.weight`);
      k = rms(k, n * c.kvHeads, hd, `${p}.self_attn.k_norm.weight`);
    }
    q = rotary(q, n, c.heads, hd, inv);
    k = rotary(k, n, c.kvHeads, hd, inv);
    const v = lin(a, 'self_attn.v_proj');
    x = addInto(x, lin(attend(q, k, v, n, c.heads, c.kvHeads, hd, true, 1 / Math.sqrt(hd)), 'self_attn.o_proj'));
    const m = rms(x, n, d, `${p}.post_attention_layernorm.weight`);
    const g = lin(m, 'mlp.gate_proj');
    const u = lin(m, 'mlp.up_proj');
    x = addInto(x, lin(g.map((gv, i) => act(gv, c.act) * u[i]), 'mlp.down_proj'));
  }
  x = rms(x, n, d, 'model.norm.weight');
  return c.tied ? linear(x, n, emb) : linear(x, n, get(w, 'lm_head.weight'), w.get('lm_head.bias'));
}

// ------------------------------------------------------------------ BERT masked LM

export interface RefBert {
  readonly layers: number;
  readonly heads: number;
  readonly eps: number;
  readonly act: RefAct;
  readonly tied: boolean;
}

export function bertLogits(w: RefWeights, tokens: readonly number[], c: RefBert): Float64Array {
  const p = 'bert.';
  const we = get(w, `${p}embeddings.word_embeddings.weight`);
  const pe = get(w, `${p}embeddings.position_embeddings.weight`);
  const te = get(w, `${p}embeddings.token_type_embeddings.weight`);
  const d = we.shape[1];
  const n = tokens.length;
  const ln = (y: Float64Array, name: string): Float64Array => norm(y, n, d, c.eps, false, get(w, `${name}.weight`), get(w, `${name}.bias`));
  const lin = (y: Float64Array, name: string): Float64Array => linear(y, n, get(w, `${name}.weight`), w.get(`${name}.bias`));
  let x: Float64Array = new Float64Array(n * d);
  tokens.forEach((t, i) => {
    for (let e = 0; e < d; e++) x[i * d + e] = we.data[t * d + e] + pe.data[i * d + e] + te.data[e];
  });
  x = ln(x, `${p}embeddings.LayerNorm`);
  const hd = d / c.heads;
  for (let l = 0; l < c.layers; l++) {
    const b = `${p}encoder.layer.${l}`;
    const att = attend(lin(x, `${b}.attention.self.query`), lin(x, `${b}.attention.self.key`), lin(x, `${b}.attention.self.value`), n, c.heads, c.heads, hd, false, 1 / Math.sqrt(hd));
    x = ln(addInto(x, lin(att, `${b}.attention.output.dense`)), `${b}.attention.output.LayerNorm`);
    x = ln(addInto(x, lin(lin(x, `${b}.intermediate.dense`).map((v) => act(v, c.act)), `${b}.output.dense`)), `${b}.output.LayerNorm`);
  }
  const t = ln(lin(x, 'cls.predictions.transform.dense').map((v) => act(v, c.act)), 'cls.predictions.transform.LayerNorm');
  return linear(t, n, c.tied ? we : get(w, 'cls.predictions.decoder.weight'), get(w, 'cls.predictions.bias'));
}

// ------------------------------------------------------------------ losses

/** Sum of -log softmax(logits row)[target] and whether the row's argmax is the target. */
export function crossEntropyRow(logits: Float64Array, row: number, vocab: number, target: number): { loss: number; correct: boolean } {
  let m = -Infinity;
  let best = 0;
  for (let v = 0; v < vocab; v++) {
    const z = logits[row * vocab + v];
    if (z > m) {
      m = z;
      best = v;
    }
  }
  let s = 0;
  for (let v = 0; v < vocab; v++) s += Math.exp(logits[row * vocab + v] - m);
  return { loss: m + Math.log(s) - logits[row * vocab + target], correct: best === target };
}

// ------------------------------------------------------------------ random state dicts

class Rand {
  private readonly r: () => number;
  readonly tensors = new Map<string, RefTensor>();
  constructor(seed: number) {
    this.r = mulberry32(seed);
  }
  add(name: string, shape: number[], lo: number, hi: number): void {
    const n = shape.reduce((a, b) => a * b, 1);
    this.tensors.set(name, { shape, data: Float32Array.from({ length: n }, () => lo + (hi - lo) * this.r()) });
  }
  /** Weight with fan-in scaling (He uniform) so activations stay O(1). */
  w(name: string, shape: number[], fanIn: number): void {
    const b = Math.sqrt(6 / fanIn);
    this.add(name, shape, -b, b);
  }
}

export function randomGpt2(o: { layers: number; d: number; vocab: number; positions: number; lmHead: boolean; seed: number }): Map<string, RefTensor> {
  const g = new Rand(o.seed);
  const { d } = o;
  g.add('transformer.wte.weight', [o.vocab, d], -1, 1);
  g.add('transformer.wpe.weight', [o.positions, d], -1, 1);
  for (let l = 0; l < o.layers; l++) {
    const h = `transformer.h.${l}`;
    for (const n of ['ln_1', 'ln_2']) {
      g.add(`${h}.${n}.weight`, [d], 0.8, 1.2);
      g.add(`${h}.${n}.bias`, [d], -0.1, 0.1);
    }
    const conv = (name: string, inp: number, out: number) => {
      g.w(`${h}.${name}.weight`, [inp, out], inp);
      g.add(`${h}.${name}.bias`, [out], -0.1, 0.1);
    };
    conv('attn.c_attn', d, 3 * d);
    conv('attn.c_proj', d, d);
    conv('mlp.c_fc', d, 4 * d);
    conv('mlp.c_proj', 4 * d, d);
  }
  g.add('transformer.ln_f.weight', [d], 0.8, 1.2);
  g.add('transformer.ln_f.bias', [d], -0.1, 0.1);
  if (o.lmHead) g.w('lm_head.weight', [o.vocab, d], d);
  return g.tensors;
}

export function randomLlama(o: {
  layers: number;
  d: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  inter: number;
  vocab: number;
  lmHead: boolean;
  qkvBias?: boolean;
  qkNorm?: boolean;
  seed: number;
}): Map<string, RefTensor> {
  const g = new Rand(o.seed);
  const { d, headDim: hd } = o;
  g.add('model.embed_tokens.weight', [o.vocab, d], -1, 1);
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    g.add(`${p}.input_layernorm.weight`, [d], 0.8, 1.2);
    g.add(`${p}.post_attention_layernorm.weight`, [d], 0.8, 1.2);
    g.w(`${p}.self_attn.q_proj.weight`, [o.heads * hd, d], d);
    g.w(`${p}.self_attn.k_proj.weight`, [o.kvHeads * hd, d], d);
    g.w(`${p}.self_attn.v_proj.weight`, [o.kvHeads * hd, d], d);
    if (o.qkvBias) {
      g.add(`${p}.self_attn.q_proj.bias`, [o.heads * hd], -0.3, 0.3);
      g.add(`${p}.self_attn.k_proj.bias`, [o.kvHeads * hd], -0.3, 0.3);
      g.add(`${p}.self_attn.v_proj.bias`, [o.kvHeads * hd], -0.3, 0.3);
    }
    if (o.qkNorm) {
      g.add(`${p}.self_attn.q_norm.weight`, [hd], 0.8, 1.2);
      g.add(`${p}.self_attn.k_norm.weight`, [hd], 0.8, 1.2);
    }
    g.w(`${p}.self_attn.o_proj.weight`, [d, o.heads * hd], o.heads * hd);
    g.w(`${p}.mlp.gate_proj.weight`, [o.inter, d], d);
    g.w(`${p}.mlp.up_proj.weight`, [o.inter, d], d);
    g.w(`${p}.mlp.down_proj.weight`, [d, o.inter], o.inter);
  }
  g.add('model.norm.weight', [d], 0.8, 1.2);
  if (o.lmHead) g.w('lm_head.weight', [o.vocab, d], d);
  return g.tensors;
}

export function randomBertMlm(o: { layers: number; d: number; inter: number; vocab: number; positions: number; decoder: boolean; seed: number }): Map<string, RefTensor> {
  const g = new Rand(o.seed);
  const { d } = o;
  const ln = (name: string) => {
    g.add(`${name}.weight`, [d], 0.8, 1.2);
    g.add(`${name}.bias`, [d], -0.1, 0.1);
  };
  const lin = (name: string, out: number, inp: number) => {
    g.w(`${name}.weight`, [out, inp], inp);
    g.add(`${name}.bias`, [out], -0.1, 0.1);
  };
  g.add('bert.embeddings.word_embeddings.weight', [o.vocab, d], -1, 1);
  g.add('bert.embeddings.position_embeddings.weight', [o.positions, d], -1, 1);
  g.add('bert.embeddings.token_type_embeddings.weight', [2, d], -1, 1);
  ln('bert.embeddings.LayerNorm');
  for (let l = 0; l < o.layers; l++) {
    const b = `bert.encoder.layer.${l}`;
    lin(`${b}.attention.self.query`, d, d);
    lin(`${b}.attention.self.key`, d, d);
    lin(`${b}.attention.self.value`, d, d);
    lin(`${b}.attention.output.dense`, d, d);
    ln(`${b}.attention.output.LayerNorm`);
    lin(`${b}.intermediate.dense`, o.inter, d);
    lin(`${b}.output.dense`, d, o.inter);
    ln(`${b}.output.LayerNorm`);
  }
  lin('cls.predictions.transform.dense', d, d);
  ln('cls.predictions.transform.LayerNorm');
  g.add('cls.predictions.bias', [o.vocab], -0.5, 0.5);
  if (o.decoder) g.w('cls.predictions.decoder.weight', [o.vocab, d], d);
  return g.tensors;
}

/** Seeded token ids in [0, vocab), n sequences of s. */
export function randomTokens(n: number, s: number, vocab: number, seed: number): Int32Array {
  const r = mulberry32(seed);
  return Int32Array.from({ length: n * s }, () => Math.floor(r() * vocab));
}
