/**
 * The model families core knows, in detection order: the first whose `detect` accepts the
 * tensors wins (transformer namings before ResNets before conv stacks before MLPs; Mixtral before
 * Llama, whose naming it extends with a router), unless a
 * `config.json` beside the checkpoint names a family whose detection also accepts them.
 * Add a family with one line here (and one in src/engine/families/registry.ts).
 */
import type { TensorShape } from '../permspec/shapes';
import { bert } from './bert';
import type { CoreFamily, FamilyId, HfConfig } from './family';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { mixtral } from './mixtral';
import { mlp } from './mlp';
import { resnet } from './resnet';
import { resnetCifar } from './resnetCifar';
import { vgg } from './vgg';
import { vit } from './vit';

export const CORE_FAMILIES: readonly CoreFamily[] = [gpt2, mixtral, llama, bert, vit, resnetCifar, resnet, vgg, mlp];

export function coreFamily(id: FamilyId): CoreFamily {
  const f = CORE_FAMILIES.find((x) => x.id === id);
  if (!f) throw new Error(`no core module for family ${id}`);
  return f;
}

/** The family the tensors belong to, or null when none matches. */
export function detectFamily(tensors: readonly TensorShape[], hf?: HfConfig): CoreFamily | null {
  const named = hf?.model_type ? CORE_FAMILIES.find((f) => f.hfModelTypes?.includes(hf.model_type!)) : undefined;
  if (named?.detect(tensors)) return named;
  return CORE_FAMILIES.find((f) => f.detect(tensors)) ?? null;
}
