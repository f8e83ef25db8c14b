/**
 * The symmetry an alignment searches (`--symmetry`): `permutation` (Git Re-Basin: permutations of
 * units and heads, every family) or `orthogonal` (the generalized transformer group of
 * transformerGroup.ts: orthogonal residual stream and per-head maps, permuted MLP units; families
 * with an `orthogonalLayout`).
 */
export const SYMMETRY_IDS = ['permutation', 'orthogonal'] as const;
export type SymmetryId = (typeof SYMMETRY_IDS)[number];
export const DEFAULT_SYMMETRY: SymmetryId = 'permutation';
