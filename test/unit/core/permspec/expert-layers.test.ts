/**
 * The mixture-of-experts layers read back from a spec's block axes (src/core/permspec/expertLayers.ts):
 * the inspector's per-layer experts line. Checked on the spec inferred for the mixtral-tiny fixture
 * (transformers' folder: 2 layers of 4 experts × 96 units, top 2) and on specs without experts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as v from 'valibot';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { stackExperts } from '../../../../src/core/moe/expertStack';
import { inferSpec } from '../../../../src/core/permspec';
import { expertLayers } from '../../../../src/core/permspec/expertLayers';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import type { PermSpec } from '../../../../src/core/checkpoint';
import { architectureOf } from '../../../../src/extension/inspectorArchitecture';
import { architectureInfoSchema } from '../../../../shared/messages/inspector';
import { hfFixture } from '../../helpers/hfFixtures';

async function specOf(fixture: string): Promise<{ spec: PermSpec; topK?: number; arch: ReturnType<typeof architectureOf> }> {
  const file = path.join(hfFixture(fixture), 'model.safetensors');
  const view = stackExperts(await openCheckpoint(file));
  try {
    const hf = readHfConfig(file);
    return { spec: inferSpec(view.tensors, hf).spec, topK: hf?.expertsPerToken, arch: architectureOf(view.tensors, hf) };
  } finally {
    await view.close();
  }
}

describe('expert layers of a spec', () => {
  it('Mixtral: per layer 4 experts × 96 units, router top 2 from config.json', async () => {
    const { spec, topK, arch } = await specOf('mixtral-tiny');
    assert.equal(topK, 2);
    const layers = expertLayers(spec, topK);
    assert.deepEqual(layers, [0, 1].map((i) => ({
      layer: `model.layers.${i}`,
      label: `layer ${i}`,
      experts: 4,
      unitsPerExpert: 96,
      topK: 2,
      outer: `P_model.layers.${i}.experts`,
      units: `P_model.layers.${i}.expert_mlp`,
      summary: `layer ${i} MLP: 4 experts × 96 units, router top 2; experts permute as units, the units inside each expert`,
    })));
    // The inspector's architecture carries them, and the webview's schema accepts it.
    assert.deepEqual(arch.experts, layers);
    assert.deepEqual(v.parse(architectureInfoSchema, arch).experts, layers);
  });

  it('without a top-k the line leaves the router out', async () => {
    const { spec } = await specOf('mixtral-tiny');
    assert.equal(expertLayers(spec)[0].summary, 'layer 0 MLP: 4 experts × 96 units; experts permute as units, the units inside each expert');
    assert.equal(expertLayers(spec)[0].topK, undefined);
  });

  it('models without experts have none (attention heads are blocks, not experts)', async () => {
    for (const name of ['llama-tiny-gqa', 'vit-tiny', 'gpt2-tiny']) {
      const { spec, arch } = await specOf(name);
      assert.deepEqual(expertLayers(spec), [], name);
      assert.equal(arch.experts, undefined, name);
    }
  });
});
