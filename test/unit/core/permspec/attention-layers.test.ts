/**
 * The attention layers read back from a spec's block axes (src/core/permspec/attentionLayers.ts): the
 * inspector's and the alignment panel's per-layer head view. Checked on the specs inferred for the
 * shared Hugging Face fixtures (GPT-2, BERT, Llama with GQA) and on a hand-written spec.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openCheckpoint, checkpointSummary } from '../../../../src/core/safetensors';
import { inferSpec } from '../../../../src/core/permspec';
import { attentionLayers } from '../../../../src/core/permspec/attentionLayers';
import { readHfConfig } from '../../../../src/core/families/hfConfig';
import type { PermSpec } from '../../../../src/core/checkpoint';
import { attentionLayer } from '../../../../webview/validate';
import { hfFixture } from '../../helpers/hfFixtures';

async function specOf(fixture: string): Promise<PermSpec> {
  const ckpt = await openCheckpoint(path.join(hfFixture(fixture), 'model.safetensors'));
  try {
    const s = checkpointSummary(ckpt);
    return inferSpec(s.tensors, readHfConfig(s.path)).spec;
  } finally {
    await ckpt.close();
  }
}

describe('attention layers of a spec', () => {
  it('GPT-2: per layer 4 heads of 16 dims, q/k and v/o inner permutations', async () => {
    const layers = attentionLayers(await specOf('gpt2-tiny'));
    assert.deepEqual(layers.map((l) => l.layer), ['transformer.h.0', 'transformer.h.1']);
    const l = layers[1];
    assert.equal(l.label, 'layer 1');
    assert.equal(l.heads, 4);
    assert.equal(l.headDim, 16);
    assert.equal(l.kvGroups, undefined);
    assert.equal(l.outer, 'P_transformer.h.1.heads');
    assert.deepEqual(l.inner, [{ perm: 'P_transformer.h.1.qk', label: 'q/k' }, { perm: 'P_transformer.h.1.vo', label: 'v/o' }]);
    assert.equal(l.fixedDims, false);
    assert.equal(l.summary, 'layer 1 attention: 4 heads × 16 dims; q/k dims permute jointly within each head; v/o dims permute within each head');
  });

  it('BERT: the same structure from separate query/key/value weights', async () => {
    const layers = attentionLayers(await specOf('bert-tiny'));
    assert.equal(layers.length, 2);
    assert.deepEqual(layers[0].inner.map((i) => i.label), ['q/k', 'v/o']);
    assert.equal(layers[0].heads, 4);
  });

  it('Llama with GQA: KV groups outside, query heads per group, v/o per group, q/k fixed', async () => {
    const layers = attentionLayers(await specOf('llama-tiny-gqa'));
    const l = layers[0];
    assert.equal(l.layer, 'model.layers.0');
    assert.equal(l.kvGroups, 2);
    assert.equal(l.heads, 4);
    assert.equal(l.headDim, 16);
    assert.equal(l.outer, 'P_model.layers.0.kv_heads');
    assert.equal(l.groupHeads, 'P_model.layers.0.heads');
    assert.deepEqual(l.inner, [{ perm: 'P_model.layers.0.vo', label: 'v/o' }]);
    assert.equal(l.fixedDims, true);
    assert.equal(l.summary, 'layer 0 attention: 2 KV groups × 2 query heads × 16 dims; query heads permute within each KV group; v/o dims permute within each KV group; q/k dims fixed (RoPE)');
  });

  it('a spec without block axes has none; layers come in numeric order', () => {
    assert.deepEqual(attentionLayers({ perms: { P: 4 }, axes: { w: ['P', null] } }), []);
    const block = (n: number) => ({ parts: [{ split: [2, 3], perms: [`P_b.${n}.heads`, null] }] });
    const spec: PermSpec = { perms: { 'P_b.10.heads': 2, 'P_b.2.heads': 2 }, axes: { 'b.10.w': [block(10), null], 'b.2.w': [block(2), null] } };
    const layers = attentionLayers(spec);
    assert.deepEqual(layers.map((l) => l.label), ['layer 2', 'layer 10']);
    assert.equal(layers[0].summary, 'layer 2 attention: 2 heads × 3 dims; some head dims fixed');
  });

  it('the webview accepts the layers as sent and names a broken field in one line', async () => {
    const [layer] = attentionLayers(await specOf('llama-tiny-gqa'));
    const sent: unknown = JSON.parse(JSON.stringify(layer));
    assert.deepEqual(attentionLayer(sent, 'state.attention[0]'), layer);
    const { headDim: _dropped, ...broken } = layer;
    assert.throws(() => attentionLayer(broken, 'state.attention[0]'), /^MessageError: message: `state\.attention\[0\]\.headDim` must be an integer >= 1$/);
  });
});
