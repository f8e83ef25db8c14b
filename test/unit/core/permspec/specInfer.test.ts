import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PermSpec } from '../../../../src/core/checkpoint';
import type { HfConfig } from '../../../../src/core/families';
import { SpecError, describeFamily, inferSpec, resolveSpec, specToFile, symmetryGroupLog10, type InferredSpec } from '../../../../src/core/permspec';
import {
  bertStateDict,
  cifarResnetStateDict,
  gpt2StateDict,
  llamaStateDict,
  mlpStateDict,
  resnetStateDict,
  shapesOf,
  vggStateDict,
  type StateTensor,
} from '../../helpers/stateDicts';

type Shapes = { name: string; shape: number[] }[];

/** Every tensor is listed, with one entry per axis, and each permutation has its axes' size. */
function assertConsistent(spec: PermSpec, tensors: Shapes): void {
  assert.deepEqual(Object.keys(spec.axes).sort(), tensors.map((t) => t.name).sort());
  const used = new Set<string>();
  for (const t of tensors) {
    const entry = spec.axes[t.name];
    assert.equal(entry.length, t.shape.length, t.name);
    entry.forEach((p, axis) => {
      if (p === null) return;
      if (typeof p !== 'string') {
        // A block axis: its parts cover the axis; the outer permutation has the blocks' count,
        // an inner one blocks x its level's size.
        assert.equal(p.parts.reduce((s, part) => s + part.split.reduce((x, y) => x * y, 1), 0), t.shape[axis], `${t.name} axis ${axis}`);
        for (const part of p.parts) {
          part.perms.forEach((q, level) => {
            if (q === null) return;
            used.add(q);
            assert.equal(spec.perms[q], level === 0 ? part.split[0] : part.split[0] * part.split[level], `${t.name} axis ${axis} (${q})`);
          });
        }
        return;
      }
      used.add(p);
      assert.equal(spec.perms[p], t.shape[axis], `${t.name} axis ${axis} (${p})`);
    });
  }
  assert.deepEqual([...used].sort(), Object.keys(spec.perms).sort(), 'every permutation acts on some axis');
}

/** Infers, checks consistency, and resolves the spec as a file against A and B. */
function inferChecked(tensors: StateTensor[], hf?: HfConfig): InferredSpec {
  const shapes = shapesOf(tensors);
  const inferred = inferSpec(shapes, hf);
  assertConsistent(inferred.spec, shapes);
  const resolved = resolveSpec(specToFile(inferred.spec), shapes, shapes, 'inferred.json');
  assert.deepEqual(resolved, inferred.spec);
  assert.ok(describeFamily(inferred).length > 0);
  assert.ok(symmetryGroupLog10(inferred.spec) > 0);
  return inferred;
}

function throwsUnplaceable(fn: () => unknown, ...fragments: string[]): SpecError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SpecError, String(e));
    assert.ok(e.kind === 'Unplaceable' || e.kind === 'UnknownFamily', e.kind);
    for (const f of [...fragments, 'rebasin spec FILE']) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
    return e;
  }
  assert.fail('expected an inference error');
}

describe('inferSpec: mlp', () => {
  it('chains Linear layers with one permutation per hidden layer', () => {
    const r = inferChecked(mlpStateDict({ sizes: [784, 512, 512, 10] }));
    assert.equal(r.family, 'mlp');
    assert.deepEqual(r.spec.perms, { 'P_layers.0': 512, 'P_layers.1': 512 });
    assert.deepEqual(r.spec.axes['layers.0.weight'], ['P_layers.0', null]);
    assert.deepEqual(r.spec.axes['layers.1.weight'], ['P_layers.1', 'P_layers.0']);
    assert.deepEqual(r.spec.axes['layers.2.weight'], [null, 'P_layers.1']);
    assert.deepEqual(r.spec.axes['layers.2.bias'], [null]);
  });
  it('handles fc1/fc2, Sequential and nested naming', () => {
    for (const naming of ['fc', 'sequential', 'model.fc'] as const) {
      const r = inferChecked(mlpStateDict({ sizes: [20, 16, 12, 5], naming, seed: 3 }));
      assert.equal(Object.keys(r.spec.perms).length, 2, naming);
    }
    const fc = inferSpec(shapesOf(mlpStateDict({ sizes: [20, 16, 12, 5], naming: 'fc' })));
    assert.deepEqual(fc.spec.axes['fc3.weight'], [null, 'P_fc2']);
    const seq = inferSpec(shapesOf(mlpStateDict({ sizes: [20, 16, 12, 5], naming: 'model.fc' })));
    assert.deepEqual(seq.spec.axes['model.fc.3.weight'], ['P_model.fc.3', 'P_model.fc.1']);
  });
  it('orders layers numerically (layers.2 before layers.10)', () => {
    const sizes = Array.from({ length: 13 }, (_, i) => 30 - i);
    const r = inferChecked(mlpStateDict({ sizes }));
    assert.deepEqual(r.spec.axes['layers.10.weight'], ['P_layers.10', 'P_layers.9']);
    assert.deepEqual(r.spec.axes['layers.11.weight'], [null, 'P_layers.10']);
  });
  it('works without biases', () => {
    const r = inferChecked(mlpStateDict({ sizes: [8, 6, 4], bias: false }));
    assert.deepEqual(r.spec.perms, { 'P_layers.0': 6 });
  });
  it('names the layer whose inputs do not chain', () => {
    const t = shapesOf(mlpStateDict({ sizes: [10, 8, 6, 4] })).map((x) => (x.name === 'layers.2.weight' ? { ...x, shape: [4, 7] } : x));
    const e = throwsUnplaceable(() => inferSpec(t), '`layers.2.weight` [4,7] takes 7 inputs', '`layers.1`, gives 6');
    assert.equal(e.tensor, 'layers.2.weight');
  });
});

describe('inferSpec: vgg', () => {
  const cfg = [8, 'M', 16, 'M', 32, 32, 'M'] as const;
  it('permutes conv channels, their BatchNorm and the classifier (1x1 spatial)', () => {
    const r = inferChecked(vggStateDict({ cfg, hidden: [24, 24], numClasses: 10, spatial: 1 }));
    assert.equal(r.family, 'vgg');
    // features: conv 0, bn 1 | pool 3 | conv 4, bn 5 | pool 7 | conv 8, bn 9 | conv 11, bn 12 | pool 14
    assert.deepEqual(r.spec.axes['features.0.weight'], ['P_features.0', null, null, null]);
    assert.deepEqual(r.spec.axes['features.4.weight'], ['P_features.4', 'P_features.0', null, null]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) assert.deepEqual(r.spec.axes[`features.5.${p}`], ['P_features.4']);
    assert.deepEqual(r.spec.axes['features.5.num_batches_tracked'], []);
    assert.deepEqual(r.spec.axes['classifier.0.weight'], ['P_classifier.0', 'P_features.11']);
    assert.deepEqual(r.spec.axes['classifier.6.weight'], [null, 'P_classifier.3']);
    assert.deepEqual(r.notes, []);
  });
  it('leaves the last conv unpermuted at a channels x spatial flatten, with a note', () => {
    const r = inferChecked(vggStateDict({ cfg, hidden: [24, 24], numClasses: 10, spatial: 7 }));
    assert.deepEqual(r.spec.axes['classifier.0.weight'], ['P_classifier.0', null]);
    assert.deepEqual(r.spec.axes['features.11.weight'], [null, 'P_features.8', null, null]);
    assert.deepEqual(r.spec.axes['features.12.running_var'], [null]);
    assert.equal(r.spec.perms['P_features.11'], undefined);
    assert.equal(r.notes.length, 1);
    assert.match(r.notes[0], /1568 = 32 channels x 49 spatial/);
  });
  it('handles a full-size VGG-11 without BatchNorm', () => {
    const r = inferChecked(vggStateDict({ batchNorm: false, hidden: [64, 64], spatial: 7 }));
    assert.equal(Object.keys(r.spec.perms).length, 7 + 2);
  });
});

describe('inferSpec: resnet', () => {
  it('torchvision ResNet-18: one stream permutation per stage, inner channels per block', () => {
    const r = inferChecked(resnetStateDict({ block: 'basic', layers: [2, 2, 2, 2] }));
    assert.equal(r.family, 'resnet');
    const streams = ['P_stem', 'P_layer2', 'P_layer3', 'P_layer4'];
    for (const s of streams) assert.ok(s in r.spec.perms, s);
    assert.equal(Object.keys(r.spec.perms).length, 4 + 8);
    assert.deepEqual(r.spec.axes['conv1.weight'], ['P_stem', null, null, null]);
    assert.deepEqual(r.spec.axes['layer1.1.conv2.weight'], ['P_stem', 'P_layer1.1.conv1', null, null]);
    assert.deepEqual(r.spec.axes['layer2.0.conv1.weight'], ['P_layer2.0.conv1', 'P_stem', null, null]);
    assert.deepEqual(r.spec.axes['layer2.0.downsample.0.weight'], ['P_layer2', 'P_stem', null, null]);
    assert.deepEqual(r.spec.axes['layer2.0.downsample.1.running_mean'], ['P_layer2']);
    assert.deepEqual(r.spec.axes['layer2.1.bn2.weight'], ['P_layer2']);
    assert.deepEqual(r.spec.axes['fc.weight'], [null, 'P_layer4']);
    assert.deepEqual(r.spec.axes['fc.bias'], [null]);
    assert.equal(r.spec.perms.P_layer4, 512);
  });
  it('bottleneck stage: downsample in layer1.0 starts a new stream; conv1 and conv2 get their own perms', () => {
    const r = inferChecked(resnetStateDict({ block: 'bottleneck', layers: [3, 2], widths: [16, 32], numClasses: 7 }));
    assert.equal(r.family, 'resnet');
    assert.deepEqual(r.spec.axes['layer1.0.downsample.0.weight'], ['P_layer1', 'P_stem', null, null]);
    assert.deepEqual(r.spec.axes['layer1.0.conv1.weight'], ['P_layer1.0.conv1', 'P_stem', null, null]);
    assert.deepEqual(r.spec.axes['layer1.0.conv2.weight'], ['P_layer1.0.conv2', 'P_layer1.0.conv1', null, null]);
    assert.deepEqual(r.spec.axes['layer1.0.conv3.weight'], ['P_layer1', 'P_layer1.0.conv2', null, null]);
    assert.deepEqual(r.spec.axes['layer1.2.conv1.weight'], ['P_layer1.2.conv1', 'P_layer1', null, null]);
    assert.deepEqual(r.spec.axes['layer1.2.bn3.bias'], ['P_layer1']);
    assert.equal(r.spec.perms.P_layer1, 64);
    assert.equal(r.spec.perms.P_layer2, 128);
    assert.deepEqual(r.spec.axes['fc.weight'], [null, 'P_layer2']);
  });
  it('accepts a DataParallel `module.` prefix', () => {
    const t = resnetStateDict({ block: 'basic', layers: [1, 1], widths: [4, 8] }).map((x) => ({ ...x, name: `module.${x.name}` }));
    const r = inferChecked(t);
    assert.deepEqual(r.spec.axes['module.layer2.0.downsample.0.weight'], ['P_layer2', 'P_stem', null, null]);
  });
  it('CIFAR ResNet-20 option A: streams tied by padding shortcuts stay unpermuted, inner channels permuted', () => {
    const r = inferChecked(cifarResnetStateDict({ shortcut: 'A' }));
    assert.equal(r.family, 'resnet-cifar');
    assert.deepEqual(Object.keys(r.spec.perms).sort(), ['P_layer1.0.conv1', 'P_layer1.1.conv1', 'P_layer1.2.conv1', 'P_layer2.0.conv1', 'P_layer2.1.conv1', 'P_layer2.2.conv1', 'P_layer3.0.conv1', 'P_layer3.1.conv1', 'P_layer3.2.conv1']);
    assert.deepEqual(r.spec.axes['conv1.weight'], [null, null, null, null]);
    assert.deepEqual(r.spec.axes['layer2.0.conv1.weight'], ['P_layer2.0.conv1', null, null, null]);
    assert.deepEqual(r.spec.axes['layer2.0.conv2.weight'], [null, 'P_layer2.0.conv1', null, null]);
    assert.deepEqual(r.spec.axes['linear.weight'], [null, null]);
    assert.equal(r.notes.length, 1);
    assert.match(r.notes[0], /option-a/);
  });
  it('CIFAR ResNet-20 option B: shortcut.0/shortcut.1 start new streams like downsample', () => {
    const r = inferChecked(cifarResnetStateDict({ shortcut: 'B' }));
    assert.equal(r.family, 'resnet-cifar');
    assert.equal(Object.keys(r.spec.perms).length, 3 + 9);
    assert.deepEqual(r.spec.axes['layer2.0.shortcut.0.weight'], ['P_layer2', 'P_stem', null, null]);
    assert.deepEqual(r.spec.axes['layer3.0.shortcut.1.running_var'], ['P_layer3']);
    assert.deepEqual(r.spec.axes['linear.weight'], [null, 'P_layer3']);
    assert.deepEqual(r.notes, []);
  });
  it('names a tensor it cannot place in a resnet, with the hint', () => {
    const t = shapesOf(resnetStateDict({ block: 'basic', layers: [1], widths: [4] }));
    t.push({ name: 'layer1.0.se.fc1.weight', shape: [2, 4] });
    const e = throwsUnplaceable(() => inferSpec(t), '`layer1.0.se.fc1.weight`', 'resnet block `layer1.0`');
    assert.equal(e.tensor, 'layer1.0.se.fc1.weight');
    const head = shapesOf(resnetStateDict({ block: 'basic', layers: [1], widths: [4] }));
    head.push({ name: 'aux_head.weight', shape: [3, 4] });
    throwsUnplaceable(() => inferSpec(head), '`aux_head.weight`');
  });
  it('names a block whose channels do not chain', () => {
    const t = shapesOf(resnetStateDict({ block: 'basic', layers: [2], widths: [4] })).map((x) => (x.name === 'layer1.1.conv1.weight' ? { ...x, shape: [4, 5, 3, 3] } : x));
    throwsUnplaceable(() => inferSpec(t), '`layer1.1.conv1.weight` reads 5 channels');
  });
});

describe('inferSpec: transformers', () => {
  it('GPT-2: one residual permutation, one mlp permutation per block, Conv1D [in, out]', () => {
    const r = inferChecked(gpt2StateDict({ layers: 3, dModel: 16, maskBuffers: true }), { heads: 4 });
    assert.equal(r.family, 'transformer');
    assert.equal(r.variant, 'gpt2');
    const perms: Record<string, number> = { P_residual: 16 };
    for (const b of [0, 1, 2]) {
      Object.assign(perms, { [`P_transformer.h.${b}.mlp`]: 64, [`P_transformer.h.${b}.heads`]: 4, [`P_transformer.h.${b}.qk`]: 16, [`P_transformer.h.${b}.vo`]: 16 });
    }
    assert.deepEqual(r.spec.perms, perms);
    assert.deepEqual(r.spec.blocks, Object.fromEntries([0, 1, 2].flatMap((b) => [[`P_transformer.h.${b}.qk`, 4], [`P_transformer.h.${b}.vo`, 4]])));
    assert.deepEqual(r.spec.axes['transformer.wte.weight'], [null, 'P_residual']);
    // c_attn packs q|k|v ([in, out]): one head permutation for all three, q/k inner shared, v's with c_proj's input.
    const head = (inner: string) => ({ split: [4, 4], perms: ['P_transformer.h.1.heads', `P_transformer.h.1.${inner}`] });
    assert.deepEqual(r.spec.axes['transformer.h.1.attn.c_attn.weight'], ['P_residual', { parts: [head('qk'), head('qk'), head('vo')] }]);
    assert.deepEqual(r.spec.axes['transformer.h.1.attn.c_attn.bias'], [{ parts: [head('qk'), head('qk'), head('vo')] }]);
    assert.deepEqual(r.spec.axes['transformer.h.1.attn.c_proj.weight'], [{ parts: [head('vo')] }, 'P_residual']);
    assert.deepEqual(r.spec.axes['transformer.h.1.mlp.c_fc.weight'], ['P_residual', 'P_transformer.h.1.mlp']);
    assert.deepEqual(r.spec.axes['transformer.h.1.mlp.c_proj.weight'], ['P_transformer.h.1.mlp', 'P_residual']);
    assert.deepEqual(r.spec.axes['transformer.h.1.attn.bias'], [null, null, null, null]);
    assert.deepEqual(r.spec.axes['transformer.ln_f.bias'], ['P_residual']);
    assert.deepEqual(r.spec.axes['lm_head.weight'], [null, 'P_residual']);
    assert.ok(r.notes.some((n) => n.includes('4 heads of 4 dimensions permute as units')));
  });
  it('GPT-2 without the transformer. prefix (GPT2Model)', () => {
    const r = inferChecked(gpt2StateDict({ prefix: '', lmHead: false }), { heads: 2 });
    assert.deepEqual(r.spec.axes['h.0.mlp.c_fc.bias'], ['P_h.0.mlp']);
  });
  it('Llama: q/k/v read the stream, o_proj writes it, gate/up/down share the mlp permutation, rotary untouched', () => {
    // No config: head_dim from the rotary inv_freq buffer (4 heads of 8 dimensions, 2 KV heads).
    const r = inferChecked(llamaStateDict({ layers: 2, rotaryBuffers: true, heads: 4, kvHeads: 2 }));
    assert.equal(r.variant, 'llama');
    const L = 'P_model.layers.0';
    assert.deepEqual(r.spec.axes['model.layers.0.self_attn.q_proj.weight'], [{ parts: [{ split: [2, 2, 8], perms: [`${L}.kv_heads`, `${L}.heads`, null] }] }, 'P_residual']);
    assert.deepEqual(r.spec.axes['model.layers.0.self_attn.k_proj.weight'], [{ parts: [{ split: [2, 8], perms: [`${L}.kv_heads`, null] }] }, 'P_residual']);
    assert.deepEqual(r.spec.axes['model.layers.0.self_attn.v_proj.weight'], [{ parts: [{ split: [2, 8], perms: [`${L}.kv_heads`, `${L}.vo`] }] }, 'P_residual']);
    assert.deepEqual(r.spec.axes['model.layers.0.self_attn.o_proj.weight'], ['P_residual', { parts: [{ split: [2, 2, 8], perms: [`${L}.kv_heads`, `${L}.heads`, `${L}.vo`] }] }]);
    assert.deepEqual(r.spec.axes['model.layers.0.self_attn.rotary_emb.inv_freq'], [null]);
    assert.deepEqual(r.spec.axes['model.layers.1.mlp.gate_proj.weight'], ['P_model.layers.1.mlp', 'P_residual']);
    assert.deepEqual(r.spec.axes['model.layers.1.mlp.up_proj.weight'], ['P_model.layers.1.mlp', 'P_residual']);
    assert.deepEqual(r.spec.axes['model.layers.1.mlp.down_proj.weight'], ['P_residual', 'P_model.layers.1.mlp']);
    assert.deepEqual(r.spec.axes['model.norm.weight'], ['P_residual']);
    assert.deepEqual(r.spec.axes['lm_head.weight'], [null, 'P_residual']);
    assert.ok(r.notes.some((n) => n.includes('rotary')));
  });
  it('BERT: embeddings, post-LN blocks and pooler; a sequence classifier reads the pooler', () => {
    const r = inferChecked(bertStateDict({ layers: 2, classifier: 3 }), { heads: 4 });
    assert.equal(r.variant, 'bert');
    assert.deepEqual(r.spec.axes['bert.embeddings.token_type_embeddings.weight'], [null, 'P_residual']);
    assert.deepEqual(r.spec.axes['bert.embeddings.position_ids'], [null, null]);
    const vo = { parts: [{ split: [4, 8], perms: ['P_bert.encoder.layer.1.heads', 'P_bert.encoder.layer.1.vo'] }] };
    assert.deepEqual(r.spec.axes['bert.encoder.layer.1.attention.self.value.weight'], [vo, 'P_residual']);
    assert.deepEqual(r.spec.axes['bert.encoder.layer.1.attention.self.key.bias'], [{ parts: [{ split: [4, 8], perms: ['P_bert.encoder.layer.1.heads', 'P_bert.encoder.layer.1.qk'] }] }]);
    assert.deepEqual(r.spec.axes['bert.encoder.layer.1.attention.output.dense.weight'], ['P_residual', vo]);
    assert.deepEqual(r.spec.axes['bert.encoder.layer.1.intermediate.dense.weight'], ['P_bert.encoder.layer.1.mlp', 'P_residual']);
    assert.deepEqual(r.spec.axes['bert.encoder.layer.1.output.LayerNorm.weight'], ['P_residual']);
    assert.deepEqual(r.spec.axes['bert.pooler.dense.weight'], [null, 'P_residual']);
    assert.deepEqual(r.spec.axes['classifier.weight'], [null, null]);
  });
  it('BERT token classifier without pooler reads the stream', () => {
    const r = inferChecked(bertStateDict({ layers: 1, pooler: false, classifier: 5, prefix: '' }), { heads: 2 });
    assert.deepEqual(r.spec.axes['classifier.weight'], [null, 'P_residual']);
  });
  it('names tensors it cannot place in a transformer, with the hint', () => {
    const t = shapesOf(gpt2StateDict({ layers: 1 }));
    t.push({ name: 'transformer.h.0.attn.lora_A.weight', shape: [4, 32] });
    const e = throwsUnplaceable(() => inferSpec(t, { heads: 4 }), '`transformer.h.0.attn.lora_A.weight` [4,32]', 'gpt2 transformer');
    assert.equal(e.tensor, 'transformer.h.0.attn.lora_A.weight');
  });
  it('turns inconsistent widths into a named inference error', () => {
    const t = shapesOf(llamaStateDict({ layers: 1 })).map((x) => (x.name === 'model.norm.weight' ? { ...x, shape: [31] } : x));
    throwsUnplaceable(() => inferSpec(t, { heads: 4 }), '`P_residual`', '`model.norm.weight`');
  });
});

describe('inferSpec: attention heads', () => {
  it('without a head count: one line saying what to add (config.json key or the model config)', () => {
    const says = (fn: () => unknown, ...fragments: string[]): void => {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof SpecError && e.kind === 'Unplaceable', String(e));
        for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" lacks "${f}"`);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    };
    says(() => inferSpec(shapesOf(gpt2StateDict({ layers: 1, dModel: 16 }))), 'cannot tell the number of attention heads', 'add "n_head"', 'config.json', '"heads" (and "kvHeads") to <checkpoint>.rebasin.json');
    says(() => inferSpec(shapesOf(bertStateDict({ layers: 1 })), { heads: 5 }), '5 attention heads', 'do not fit the attention width 32', '"num_attention_heads"');
  });
  it('Llama never puts an inner permutation on q or k (rotary pairs), with or without GQA; q_norm/k_norm of head_dim stay', () => {
    for (const [heads, kvHeads] of [[4, 4], [4, 2], [4, 1]]) {
      const t = shapesOf(llamaStateDict({ layers: 2, dModel: 16, heads, kvHeads, intermediate: 20, vocab: 11 }));
      t.push({ name: 'model.layers.0.self_attn.q_norm.weight', shape: [4] }, { name: 'model.layers.0.self_attn.k_norm.weight', shape: [4] });
      const r = inferSpec(t, { heads, kvHeads });
      assertConsistent(r.spec, t);
      for (const [name, entry] of Object.entries(r.spec.axes)) {
        if (!/self_attn\.[qk]_(proj|norm)\./.test(name)) continue;
        for (const axis of entry) {
          if (axis === null || typeof axis === 'string') continue;
          for (const part of axis.parts) assert.equal(part.perms[part.perms.length - 1], null, `${name}: q/k dimensions must not permute`);
        }
      }
      assert.deepEqual(r.spec.axes['model.layers.0.self_attn.q_norm.weight'], [null]);
      assert.deepEqual(r.spec.axes['model.layers.0.self_attn.k_norm.weight'], [null]);
      // No permutation outside the inferred group: vo is per KV group, query heads within a group.
      if (kvHeads < heads) assert.equal(r.spec.blocks?.['P_model.layers.0.heads'] ?? 1, kvHeads);
      assert.equal(r.spec.blocks?.['P_model.layers.0.vo'] ?? 1, kvHeads);
    }
  });
});

describe('inferSpec: unknown', () => {
  it('rejects tensors of no supported family', () => {
    const e = throwsUnplaceable(() => inferSpec([{ name: 'alpha', shape: [3] }]), 'no supported family');
    assert.equal(e.kind, 'UnknownFamily');
  });
});

describe('inferSpec: mlp order from shapes', () => {
  it('orders input/hidden/output by shape chaining when names do not sort', () => {
    const t = [
      { name: 'output.weight', shape: [3, 7] },
      { name: 'output.bias', shape: [3] },
      { name: 'input.weight', shape: [9, 5] },
      { name: 'input.bias', shape: [9] },
      { name: 'hidden.weight', shape: [7, 9] },
      { name: 'hidden.bias', shape: [7] },
    ];
    const r = inferSpec(t);
    assert.deepEqual(r.spec.axes['hidden.weight'], ['P_hidden', 'P_input']);
    assert.deepEqual(r.spec.axes['output.weight'], [null, 'P_hidden']);
    assert.deepEqual(r.spec.axes['input.weight'], ['P_input', null]);
    assert.match(r.notes[0], /ordered by shapes: `input` -> `hidden` -> `output`/);
  });
  it('refuses an ambiguous order and many same-shape layers quickly', () => {
    const square = Array.from({ length: 20 }, (_, i) => ({ name: `blk${String.fromCharCode(97 + i)}.weight`, shape: [8, 8] }));
    const start = Date.now();
    throwsUnplaceable(() => inferSpec([...square, { name: 'aaa.weight', shape: [3, 7] }]), 'takes');
    assert.ok(Date.now() - start < 2000);
  });
});

describe('inferSpec: named conv nets and norms', () => {
  it('LeNet-style conv1/bn1/conv2/bn2/fc1..3: each norm follows the layer with its number', () => {
    const t = [
      { name: 'conv1.weight', shape: [6, 1, 5, 5] },
      { name: 'conv1.bias', shape: [6] },
      { name: 'bn1.weight', shape: [6] },
      { name: 'bn1.bias', shape: [6] },
      { name: 'bn1.running_mean', shape: [6] },
      { name: 'bn1.running_var', shape: [6] },
      { name: 'bn1.num_batches_tracked', shape: [] },
      { name: 'conv2.weight', shape: [6, 6, 5, 5] },
      { name: 'bn2.weight', shape: [6] },
      { name: 'bn2.bias', shape: [6] },
      { name: 'fc1.weight', shape: [120, 150] },
      { name: 'fc1.bias', shape: [120] },
      { name: 'fc2.weight', shape: [84, 120] },
      { name: 'fc3.weight', shape: [10, 84] },
    ];
    const r = inferSpec(t);
    assertConsistent(r.spec, t);
    assert.equal(r.family, 'vgg');
    assert.deepEqual(r.spec.axes['bn1.running_var'], ['P_conv1']);
    assert.deepEqual(r.spec.axes['conv2.weight'], [null, 'P_conv1', null, null]);
    assert.deepEqual(r.spec.axes['bn2.weight'], [null]);
    assert.deepEqual(r.spec.axes['fc2.weight'], ['P_fc2', 'P_fc1']);
    assert.match(r.notes[0], /150 = 6 channels x 25 spatial/);
  });
  it('BatchNorm1d between Linear layers of an MLP', () => {
    const t = [
      { name: 'fc1.weight', shape: [16, 8] },
      { name: 'norm1.weight', shape: [16] },
      { name: 'norm1.bias', shape: [16] },
      { name: 'fc2.weight', shape: [4, 16] },
    ];
    const r = inferSpec(t);
    assert.deepEqual(r.spec.axes['norm1.bias'], ['P_fc1']);
  });
  it('names a norm whose size does not match its layer', () => {
    const t = shapesOf(vggStateDict({ cfg: [4, 'M', 8], hidden: [6], numClasses: 2, spatial: 1 })).map((x) => (x.name.startsWith('features.5.') && x.shape.length === 1 ? { ...x, shape: [5] } : x));
    throwsUnplaceable(() => inferSpec(t), '`features.5`');
  });
  it('says so when there is nothing to permute', () => {
    const r = inferSpec([{ name: 'linear.weight', shape: [3, 4] }, { name: 'linear.bias', shape: [3] }]);
    assert.deepEqual(r.spec.perms, {});
    assert.ok(r.notes.some((n) => n.includes('no hidden units')));
  });
});

describe('inferSpec: more namings', () => {
  it('a bare nn.Sequential MLP (`1.weight`, `3.weight`, `5.weight`)', () => {
    const t = shapesOf(mlpStateDict({ sizes: [12, 10, 8, 3] })).map((x) => ({ ...x, name: x.name.replace(/^layers\.(\d+)/, (_, i: string) => String(2 * Number(i) + 1)) }));
    const r = inferSpec(t);
    assertConsistent(r.spec, t);
    assert.deepEqual(r.spec.axes['3.weight'], ['P_3', 'P_1']);
    assert.deepEqual(r.spec.axes['5.weight'], [null, 'P_3']);
  });
  it('a ResNet with a Sequential head (fc.0 Linear, fc.1 BatchNorm1d, fc.3 Linear)', () => {
    const body = shapesOf(resnetStateDict({ block: 'basic', layers: [1, 1], widths: [4, 8] })).filter((x) => !x.name.startsWith('fc.'));
    const t = [
      ...body,
      { name: 'fc.0.weight', shape: [6, 8] },
      { name: 'fc.0.bias', shape: [6] },
      { name: 'fc.1.weight', shape: [6] },
      { name: 'fc.1.bias', shape: [6] },
      { name: 'fc.1.running_mean', shape: [6] },
      { name: 'fc.1.running_var', shape: [6] },
      { name: 'fc.1.num_batches_tracked', shape: [] },
      { name: 'fc.3.weight', shape: [2, 6] },
      { name: 'fc.3.bias', shape: [2] },
    ];
    const r = inferSpec(t);
    assertConsistent(r.spec, t);
    assert.deepEqual(r.spec.axes['fc.0.weight'], ['P_fc.0', 'P_layer2']);
    assert.deepEqual(r.spec.axes['fc.1.running_var'], ['P_fc.0']);
    assert.deepEqual(r.spec.axes['fc.3.weight'], [null, 'P_fc.0']);
    assert.deepEqual(r.spec.axes['fc.3.bias'], [null]);
  });
});

describe('inferSpec: BERT masked-LM head', () => {
  it('keeps the stream order through the MLM transform so a decoder tied to word_embeddings stays consistent', () => {
    const t = shapesOf(bertStateDict({ layers: 1, dModel: 8, vocab: 20, pooler: false }));
    t.push(
      { name: 'cls.predictions.bias', shape: [20] },
      { name: 'cls.predictions.transform.dense.weight', shape: [8, 8] },
      { name: 'cls.predictions.transform.dense.bias', shape: [8] },
      { name: 'cls.predictions.transform.LayerNorm.weight', shape: [8] },
      { name: 'cls.predictions.transform.LayerNorm.bias', shape: [8] },
      { name: 'cls.predictions.decoder.weight', shape: [20, 8] },
      { name: 'cls.predictions.decoder.bias', shape: [20] },
    );
    const r = inferSpec(t, { heads: 2 });
    assertConsistent(r.spec, t);
    assert.deepEqual(r.spec.axes['cls.predictions.decoder.weight'], r.spec.axes['bert.embeddings.word_embeddings.weight']);
    assert.deepEqual(r.spec.axes['cls.predictions.transform.dense.weight'], ['P_residual', 'P_residual']);
    assert.deepEqual(r.spec.axes['cls.predictions.decoder.bias'], [null]);
  });
});
