/**
 * The layer or module a tensor belongs to, for per-layer sums: its name up to the first numeric
 * segment (`model.layers.3.mlp.up_proj.weight` -> `model.layers.3`, `layer1.0.conv1.weight` ->
 * `layer1.0`), else its module (`fc1.weight` -> `fc1`, `model.embed_tokens.weight` ->
 * `model.embed_tokens`); a one-segment name is its own group.
 */
export function layerGroupOf(tensor: string): string {
  const parts = tensor.split('.');
  const numeric = parts.findIndex((p, i) => i > 0 && /^\d+$/.test(p));
  if (numeric > 0) return parts.slice(0, numeric + 1).join('.');
  return parts.length > 1 ? parts.slice(0, -1).join('.') : tensor;
}
