/**
 * The model config: what weights cannot say about a network (pooling layout, activation,
 * input shape, normalisation). A JSON file, `<checkpoint>.rebasin.json` beside the checkpoint
 * or the path given with `--model`:
 *
 *   { "family": "mlp", "activation": "relu", "inputShape": [784] }
 *   { "family": "vgg", "inputShape": [3, 32, 32], "layout": [64, "M", 128, "M", 256, 256, "M"] }
 *   { "family": "resnet-cifar", "inputShape": [3, 32, 32] }
 *   { "family": "resnet", "inputShape": [1, 28, 28] }
 *   { "family": "transformer", "heads": 12 }   (or "gpt2" / "llama" / "bert"; keys in lmShapes.ts)
 *   { "family": "vit", "heads": 4, "inputShape": [3, 32, 32] }
 *
 * Every field is optional; absent fields are inferred from the weights when unambiguous
 * (an MLP's input size is its first weight's `in`; a VGG's layout is the standard torchvision
 * configuration with the same conv widths; ResNets pool where torchvision / CIFAR ports do).
 * `inputShape` is PyTorch's per-example shape: [features] or [channels, height, width].
 * A family that reads Hugging Face's `config.json` (`modelConfigFromHf`, e.g. ViT) takes its
 * keys from there too; the model config's own keys win.
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { MAX_CONFIG_JSON_BYTES, MAX_MODEL_CONFIG_BYTES, readBoundedFileSync, readJsonObjectSync, utf8Text } from '../files';
import * as v from 'valibot';
import { FAMILY_IDS, type FamilyName } from './familyId';
import { ModelError } from './modelErrors';
import { CORE_FAMILIES } from './registry';

export type Activation = 'relu' | 'gelu' | 'tanh' | 'sigmoid' | 'identity';

// A family id, or `transformer`: whichever transformer naming the weights use (the name docs/cli.md gives).
const FAMILIES: readonly FamilyName[] = [...FAMILY_IDS, 'transformer'];
const ACTIVATIONS: readonly Activation[] = ['relu', 'gelu', 'tanh', 'sigmoid', 'identity'];

const positiveInt = (rule: string) => v.pipe(v.number(rule), v.integer(rule), v.minValue(1, rule));

/**
 * The model config's schema (valibot; docs/architecture.md says why valibot). Each field's
 * message is the rule the user reads. Keys of other families (a transformer's `heads`...) pass
 * through and are checked by the family that reads them (src/core/families/lmShapes.ts).
 */
export const ModelConfigSchema = v.looseObject({
  family: v.optional(v.picklist(FAMILIES, `family must be one of ${FAMILIES.join(', ')}`)),
  activation: v.optional(v.picklist(ACTIVATIONS, `activation must be one of ${ACTIVATIONS.join(', ')}`)),
  /** PyTorch's per-example shape: [features] or [channels, height, width]. */
  inputShape: v.optional(
    v.pipe(v.array(positiveInt('inputShape must be a non-empty array of positive integers'), 'inputShape must be a non-empty array of positive integers'), v.minLength(1, 'inputShape must be a non-empty array of positive integers')),
  ),
  /** VGG feature layout: conv widths and "M" for 2x2 max-pooling, torchvision's `cfg`. */
  layout: v.optional(v.array(v.union([v.literal('M'), positiveInt('')], 'layout must be an array of positive integers and "M"'), 'layout must be an array of positive integers and "M"')),
  /** BatchNorm / LayerNorm epsilon (default 1e-5, PyTorch's). */
  eps: v.optional(v.pipe(v.number('eps must be a positive number'), v.gtValue(0, 'eps must be a positive number'))),
});

export type ModelConfig = Readonly<v.InferOutput<typeof ModelConfigSchema>>;

/**
 * The model-config keys of the `config.json` in the checkpoint's folder (a folder: its own), for
 * a family that reads one; `{}` otherwise. One that cannot be read is left to spec inference,
 * which refuses it in one line (src/core/families/hfConfig.ts).
 */
function hfModelConfig(checkpointPath: string): Record<string, unknown> {
  if (!checkpointPath) return {};
  let folder = path.dirname(checkpointPath);
  try {
    if (statSync(checkpointPath).isDirectory()) folder = checkpointPath;
  } catch {
    // not there: the reader names the missing checkpoint
  }
  const file = path.join(folder, 'config.json');
  if (!existsSync(file)) return {};
  let raw: Record<string, unknown>;
  try {
    raw = readJsonObjectSync(file, MAX_CONFIG_JSON_BYTES, 'config.json');
  } catch {
    return {};
  }
  const type = raw.model_type;
  const family = typeof type === 'string' ? CORE_FAMILIES.find((f) => f.modelConfigFromHf && f.hfModelTypes?.includes(type)) : undefined;
  return family?.modelConfigFromHf?.(raw) ?? {};
}

/** Reads the explicit config, else `<checkpoint>.rebasin.json`, over the keys a `config.json` gives; else returns `{}`. */
export function readModelConfig(checkpointPath: string, explicitPath?: string): ModelConfig {
  const fromHf = hfModelConfig(checkpointPath);
  const file = explicitPath ?? `${checkpointPath}.rebasin.json`;
  if (!existsSync(file)) {
    if (explicitPath) throw new ModelError('ConfigInvalid', `${file}: model config not found`, file);
    // The family's modelConfigFromHf makes only valid keys: no message here names config.json.
    return validateModelConfig(fromHf, 'config.json');
  }
  // A folder, FIFO or device is refused before any read; the size is checked first.
  const text = utf8Text(readBoundedFileSync(file, MAX_MODEL_CONFIG_BYTES, 'model config'));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelError('ConfigInvalid', `${file}: model config is not valid json (${(e as Error).message})`, file);
  }
  const isObject = typeof raw === 'object' && raw !== null && !Array.isArray(raw);
  return validateModelConfig(isObject ? { ...fromHf, ...(raw as Record<string, unknown>) } : raw, file);
}

export function validateModelConfig(raw: unknown, file: string): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelError('ConfigInvalid', `${file}: model config must be a json object`, file);
  const r = v.safeParse(ModelConfigSchema, raw);
  if (!r.success) throw new ModelError('ConfigInvalid', `${file}: ${r.issues[0].message}`, file);
  return r.output;
}
