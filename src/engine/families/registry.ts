/**
 * The forward passes, one engine module per family (src/core/families/registry.ts lists the
 * same families for detection and spec inference). Add a family with one line here.
 */
import type { FamilyId } from '../../core/families/family';
import { bert } from './bert';
import type { LmArchitecture } from '../lm/architecture';
import type { EngineFamily } from './family';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { mixtral } from './mixtral';
import { mlp } from './mlp';
import { resnet } from './resnet';
import { resnetCifar } from './resnetCifar';
import { vgg } from './vgg';
import { vit } from './vit';

export const ENGINE_FAMILIES: readonly EngineFamily[] = [mlp, vgg, resnet, resnetCifar, gpt2, llama, mixtral, bert, vit];

/** The LM forward pass and its companions of family `id`; throws for a family without one. */
export function lmArchitecture(id: FamilyId): LmArchitecture {
  const lm = engineFamily(id).lm;
  if (!lm) throw new Error(`family ${id} has no language-model forward pass`);
  return lm;
}

export function engineFamily(id: FamilyId): EngineFamily {
  const f = ENGINE_FAMILIES.find((x) => x.id === id);
  if (!f) throw new Error(`no engine module for family ${id}`);
  return f;
}
