/**
 * Rotary position embeddings (Su et al. 2021, arXiv 2104.09864) as Hugging Face computes them
 * (`modeling_rope_utils.py`): inverse frequencies theta^(-2e/d) for e < d/2, adjusted by the
 * config's scaling type, then angle[p, e] = p * inv_freq[e mod d/2] in the rotate-half layout.
 * Every step is rounded to float32 as torch does it, so long contexts keep the same angles.
 */
import type { RopeConfig } from './config';

const f32 = Math.fround;

/** Default inverse frequencies for head_dim `dim` and base `theta` (float32 like torch). */
function defaultInvFreq(dim: number, theta: number): Float32Array {
  return Float32Array.from({ length: dim / 2 }, (_, e) => f32(1 / f32(theta ** f32((2 * e) / dim))));
}

/**
 * Inverse frequencies for a sequence of `seqLen` tokens.
 * - linear: every frequency divided by `factor` (positions stretched);
 * - dynamic (NTK): base raised when the sequence is longer than `maxPositions`:
 *   theta * (factor * s / max - (factor - 1))^(d / (d - 2)); unchanged up to `maxPositions`;
 * - llama3: frequencies whose wavelength exceeds original_max / low_freq_factor are divided by
 *   `factor`, those below original_max / high_freq_factor kept, and the band between
 *   interpolated linearly in original_max / wavelength.
 */
export function ropeInvFreq(rope: RopeConfig, dim: number, seqLen: number, maxPositions: number): Float32Array {
  if (rope.invFreq) return rope.invFreq.values;
  switch (rope.type) {
    case 'default':
      return defaultInvFreq(dim, rope.theta);
    case 'linear':
      return defaultInvFreq(dim, rope.theta).map((f) => f32(f / rope.factor));
    case 'dynamic': {
      const s = Math.max(seqLen, maxPositions);
      const base = rope.theta * ((rope.factor * s) / maxPositions - (rope.factor - 1)) ** (dim / (dim - 2));
      return defaultInvFreq(dim, base);
    }
    case 'llama3': {
      const old = rope.originalMaxPositions!;
      const low = rope.lowFreqFactor!;
      const high = rope.highFreqFactor!;
      const lowWavelen = old / low;
      const highWavelen = old / high;
      return defaultInvFreq(dim, rope.theta).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f32(f / rope.factor);
        const smooth = (old / wavelen - low) / (high - low);
        return f32((1 - smooth) * (f / rope.factor) + smooth * f);
      });
    }
  }
}

/** cos and sin tables [seq, head_dim] (rotate-half layout: frequency e mod head_dim/2), row-major. */
export function ropeTables(invFreq: Float32Array, seq: number): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const hd = 2 * half;
  const cos = new Float32Array(seq * hd);
  const sin = new Float32Array(seq * hd);
  for (let p = 0; p < seq; p++) {
    for (let e = 0; e < half; e++) {
      const ang = f32(p * invFreq[e]);
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      cos[p * hd + e] = c;
      cos[p * hd + e + half] = c;
      sin[p * hd + e] = s;
      sin[p * hd + e + half] = s;
    }
  }
  return { cos, sin };
}
