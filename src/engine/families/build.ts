/** Which family a set of weights is, and its forward pass, through the two family registries. */
import type { Checkpoint, DenseTensor, TensorMap } from '../../core/checkpoint';
import { isFamilyId, type FamilyId } from '../../core/families/family';
import { readModelConfig, type ModelConfig } from '../../core/families/modelConfig';
import { ModelError } from '../../core/families/modelErrors';
import { CORE_FAMILIES, detectFamily } from '../../core/families/registry';
import { flaxAsTorch, flaxTensorsAsTorch, isPaperResnet, looksFlax } from '../../core/permspec/flaxLayout';
import type { TensorShape } from '../../core/permspec/shapes';
import type { Model } from '../compute/model';
import { engineFamily } from './registry';

function shapes(tensors: TensorMap): TensorShape[] {
  return [...tensors].map(([name, t]) => ({ name, shape: t.shape }));
}

/**
 * The family of the weights: the config's `family` when it names one (`transformer`: whichever
 * transformer naming the weights use), else detection; weights no family claims run as a VGG
 * when they hold a 4-d kernel, else as an MLP (the builders then say what they cannot place).
 */
export function detectModelFamily(tensors: TensorMap, config: ModelConfig = {}): FamilyId {
  if (isFamilyId(config.family)) return config.family;
  const given = shapes(tensors);
  const named = looksFlax(given) ? flaxAsTorch(given).tensors : given;
  // A name several families share (`transformer`): whichever of them the weights' naming shows.
  const t = CORE_FAMILIES.find((f) => f.reportedAs === config.family && f.detect(named));
  if (t) return t.id;
  const found = detectFamily(named);
  if (found) return found.id;
  return [...tensors.values()].some((t) => t.shape.length === 4) ? 'vgg' : 'mlp';
}

/** The family's classifier forward pass; ModelError `Unsupported` for a family without one. */
export function buildModel(weights: TensorMap, config: ModelConfig = {}): Model {
  // Flax checkpoints run through the same forward passes, their kernels seen in PyTorch's layout.
  const flax = looksFlax(shapes(weights));
  if (flax && isPaperResnet(shapes(weights))) {
    // Its norms are LayerNorms over channels, which the ResNet forward pass does not run: refuse rather than compute another function.
    throw new ModelError('Unsupported', "the Git Re-Basin paper's Flax ResNet (LayerNorm) has no forward pass here: weight matching works; barriers, evaluation and data-driven matching do not");
  }
  const tensors = flax ? flaxTensorsAsTorch(weights) : weights;
  const id = detectModelFamily(tensors, config);
  const family = engineFamily(id);
  if (!family.buildClassifier) {
    // Their forward pass (token ids to logits, src/engine/lm/) serves LM barriers, activation matching and the equivalence check.
    throw new ModelError('Unsupported', 'transformer checkpoints have no classifier forward pass for barriers, evaluation or data-driven matching (weight matching and the equivalence check work)');
  }
  return family.buildClassifier(tensors, config);
}

/** Every tensor of a checkpoint as float32 (for interpolation and model building). */
export async function readTensors(ckpt: Checkpoint): Promise<Map<string, DenseTensor>> {
  const out = new Map<string, DenseTensor>();
  for (const t of ckpt.tensors) out.set(t.name, { shape: [...t.shape], data: await ckpt.readFloat32(t.name) });
  return out;
}

/** Builds a model from a checkpoint (reading its weights) or tensors; the config file is read when `checkpointPath` or `configPath` is given. */
export async function loadModel(source: Checkpoint | TensorMap, configPath?: string): Promise<Model> {
  const isCkpt = (s: Checkpoint | TensorMap): s is Checkpoint => typeof (s as Checkpoint).readFloat32 === 'function';
  const tensors = isCkpt(source) ? await readTensors(source) : source;
  const config = isCkpt(source) ? readModelConfig(source.path, configPath) : configPath ? readModelConfig('', configPath) : {};
  return buildModel(tensors, config);
}
