/**
 * The forward passes, one engine module per family (src/core/families/registry.ts lists the
 * same families for detection and spec inference). Add a family with one line here.
 */
import type { FamilyId } from '../../core/families/family';
import { bert } from './bert';
import type { EngineFamily } from './family';
import { gpt2 } from './gpt2';
import { llama } from './llama';
import { mlp } from './mlp';
import { resnet } from './resnet';
import { resnetCifar } from './resnetCifar';
import { vgg } from './vgg';
import { vit } from './vit';

export const ENGINE_FAMILIES: readonly EngineFamily[] = [mlp, vgg, resnet, resnetCifar, gpt2, llama, bert, vit];

export function engineFamily(id: FamilyId): EngineFamily {
  const f = ENGINE_FAMILIES.find((x) => x.id === id);
  if (!f) throw new Error(`no engine module for family ${id}`);
  return f;
}
