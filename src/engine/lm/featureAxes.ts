/**
 * Which spec permutations an LM's features (layers.ts `LmFeatureHooks`) sample, read from the
 * spec entries of the tensors those features feed: the residual stream from the token
 * embedding's width axis, each MLP's hidden units from its down projection's input axis, and
 * each block's attention from the block axes (heads x head_dim, or KV groups x query heads x
 * head_dim) of the output projection's input and of the q, k, v projections' outputs.
 */
import type { BlockPart, PermSpec } from '../../core/checkpoint';
import { isBlockAxis } from '../../core/blockAxis';
import type { LmConfig } from './config';
import { mixtralExpertAxes } from './mixtralFeatures';

/** One block's attention features as block axes of the spec (undefined: not permuted as heads). */
export interface LmHeadAxes {
  /** The heads' outputs, laid out like the output projection's input. */
  readonly out?: BlockPart;
  readonly q?: BlockPart;
  readonly k?: BlockPart;
  readonly v?: BlockPart;
}

/** Which spec permutation each LM feature belongs to (undefined: that feature is not permuted). */
export interface LmFeatureAxes {
  /** The residual stream's permutation: fed by the embeddings' and every block's output. */
  readonly residual?: string;
  /** Per block, its MLP hidden units' permutation. */
  readonly mlp: readonly (string | undefined)[];
  /** Per block, its attention's block axes (absent: heads are not matched). */
  readonly heads?: readonly (LmHeadAxes | undefined)[];
  /** Mixture of experts: per block, the experts' hidden units as a block axis [experts, units] (lm/mixtralFeatures.ts). */
  readonly experts?: readonly (BlockPart | undefined)[];
}

/** Tensor names (and axis) of each feature, per family; `prefix` is the naming's prefix (`transformer.`, `model.`, `bert.`). */
function sources(config: LmConfig, prefix: string, i: number): { residual: Src; mlp: Src; out: Src; q: Src; k: Src; v: Src } {
  const p = prefix;
  switch (config.family) {
    case 'gpt2': {
      const h = `${p}h.${i}`;
      // Conv1D weights are [in, out]; c_attn packs q | k | v on its output axis.
      return {
        residual: [`${p}wte.weight`, 1],
        mlp: [`${h}.mlp.c_proj.weight`, 0],
        out: [`${h}.attn.c_proj.weight`, 0],
        q: [`${h}.attn.c_attn.weight`, 1, 0],
        k: [`${h}.attn.c_attn.weight`, 1, 1],
        v: [`${h}.attn.c_attn.weight`, 1, 2],
      };
    }
    case 'llama':
    case 'mixtral': {
      // Mixtral has no dense MLP (no down_proj): its experts' units are matched by weight only.
      const l = `${p}layers.${i}`;
      return {
        residual: [`${p}embed_tokens.weight`, 1],
        mlp: [`${l}.mlp.down_proj.weight`, 1],
        out: [`${l}.self_attn.o_proj.weight`, 1],
        q: [`${l}.self_attn.q_proj.weight`, 0],
        k: [`${l}.self_attn.k_proj.weight`, 0],
        v: [`${l}.self_attn.v_proj.weight`, 0],
      };
    }
    case 'bert': {
      const l = `${p}encoder.layer.${i}`;
      return {
        residual: [`${p}embeddings.word_embeddings.weight`, 1],
        mlp: [`${l}.output.dense.weight`, 1],
        out: [`${l}.attention.output.dense.weight`, 1],
        q: [`${l}.attention.self.query.weight`, 0],
        k: [`${l}.attention.self.key.weight`, 0],
        v: [`${l}.attention.self.value.weight`, 0],
      };
    }
  }
}

/** [tensor, axis, part of a concatenated block axis]. */
type Src = readonly [string, number, number?];

function plainPerm(spec: PermSpec, [tensor, axis]: Src): string | undefined {
  const entry = spec.axes[tensor]?.[axis];
  return typeof entry === 'string' ? entry : undefined;
}

function blockPart(spec: PermSpec, [tensor, axis, part]: Src): BlockPart | undefined {
  const entry = spec.axes[tensor]?.[axis];
  if (!isBlockAxis(entry)) return undefined;
  if (part === undefined) return entry.parts.length === 1 ? entry.parts[0] : undefined;
  return entry.parts[part];
}

export function lmFeatureAxes(spec: PermSpec, config: LmConfig, prefix: string): LmFeatureAxes {
  const layers = Array.from({ length: config.layers }, (_, i) => sources(config, prefix, i));
  return {
    residual: plainPerm(spec, sources(config, prefix, 0).residual),
    mlp: layers.map((s) => plainPerm(spec, s.mlp)),
    heads: layers.map((s) => {
      const h: LmHeadAxes = { out: blockPart(spec, s.out), q: blockPart(spec, s.q), k: blockPart(spec, s.k), v: blockPart(spec, s.v) };
      return h.out || h.q || h.k || h.v ? h : undefined;
    }),
    ...(config.family === 'mixtral' ? { experts: mixtralExpertAxes(spec, config, prefix) } : {}),
  };
}
