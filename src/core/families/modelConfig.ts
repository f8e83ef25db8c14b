/**
 * The model config: what weights cannot say about a network (pooling layout, activation,
 * input shape, normalisation). A JSON file, `<checkpoint>.rebasin.json` beside the checkpoint
 * or the path given with `--model`:
 *
 *   { "family": "mlp", "activation": "relu", "inputShape": [784] }
 *   { "family": "vgg", "inputShape": [3, 32, 32], "layout": [64, "M", 128, "M", 256, 256, "M"] }
 *   { "family": "resnet-cifar", "inputShape": [3, 32, 32] }
 *   { "family": "resnet", "inputShape": [1, 28, 28] }
 *   { "family": "transformer", "heads": 12 }   (or "gpt2" / "llama" / "bert"; keys in transformerConfig.ts)
 *
 * Every field is optional; absent fields are inferred from the weights when unambiguous
 * (an MLP's input size is its first weight's `in`; a VGG's layout is the standard torchvision
 * configuration with the same conv widths; ResNets pool where torchvision / CIFAR ports do).
 * `inputShape` is PyTorch's per-example shape: [features] or [channels, height, width].
 */
import { existsSync, readFileSync } from 'node:fs';
import { FAMILY_IDS, type FamilyId } from './family';
import { ModelError } from './modelErrors';

/** A family id, or `transformer`: whichever transformer naming the weights use (the name docs/cli.md gives). */
export type ModelFamily = FamilyId | 'transformer';
export type Activation = 'relu' | 'gelu' | 'tanh' | 'sigmoid' | 'identity';

export interface ModelConfig {
  readonly family?: ModelFamily;
  readonly activation?: Activation;
  readonly inputShape?: readonly number[];
  /** VGG feature layout: conv widths and "M" for 2x2 max-pooling, torchvision's `cfg`. */
  readonly layout?: readonly (number | 'M')[];
  /** BatchNorm / LayerNorm epsilon (default 1e-5, PyTorch's). */
  readonly eps?: number;
}

const FAMILIES: readonly ModelFamily[] = [...FAMILY_IDS, 'transformer'];
const ACTIVATIONS: readonly Activation[] = ['relu', 'gelu', 'tanh', 'sigmoid', 'identity'];

/** Reads the explicit config, else `<checkpoint>.rebasin.json`, else returns `{}`. */
export function readModelConfig(checkpointPath: string, explicitPath?: string): ModelConfig {
  const file = explicitPath ?? `${checkpointPath}.rebasin.json`;
  if (!existsSync(file)) {
    if (explicitPath) throw new ModelError('ConfigInvalid', `${file}: model config not found`, file);
    return {};
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelError('ConfigInvalid', `${file}: model config is not valid json (${(e as Error).message})`, file);
  }
  return validateModelConfig(raw, file);
}

export function validateModelConfig(raw: unknown, file: string): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelError('ConfigInvalid', `${file}: model config must be a json object`, file);
  const o = raw as Record<string, unknown>;
  const bad = (rule: string): never => {
    throw new ModelError('ConfigInvalid', `${file}: ${rule}`, file);
  };
  if (o.family !== undefined && !FAMILIES.includes(o.family as ModelFamily)) bad(`family must be one of ${FAMILIES.join(', ')}`);
  if (o.activation !== undefined && !ACTIVATIONS.includes(o.activation as Activation)) bad(`activation must be one of ${ACTIVATIONS.join(', ')}`);
  if (o.inputShape !== undefined && !(Array.isArray(o.inputShape) && o.inputShape.length > 0 && o.inputShape.every((d) => Number.isInteger(d) && d > 0))) {
    bad('inputShape must be a non-empty array of positive integers');
  }
  if (o.layout !== undefined && !(Array.isArray(o.layout) && o.layout.every((d) => d === 'M' || (Number.isInteger(d) && d > 0)))) {
    bad('layout must be an array of positive integers and "M"');
  }
  if (o.eps !== undefined && !(typeof o.eps === 'number' && o.eps > 0)) bad('eps must be a positive number');
  return o as ModelConfig;
}
