import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectionProblem } from '../../../src/extension/layoutSelection';

test('checkpoints of one layout can be merged; ticking another layout or an unreadable file says why at once', () => {
  assert.equal(selectionProblem([]), undefined);
  assert.equal(selectionProblem([{ name: 'a.safetensors', layout: 0 }, { name: 'b.safetensors', layout: 0 }]), undefined);
  assert.equal(
    selectionProblem([{ name: 'a.safetensors', layout: 0 }, { name: 'b.safetensors', layout: 0 }, { name: 'gpt2.safetensors', layout: 1 }]),
    'a.safetensors and gpt2.safetensors have different tensor names or shapes (layouts 1, 2): pick checkpoints of one layout',
  );
  assert.equal(selectionProblem([{ name: 'a.safetensors', layout: 0 }, { name: 'broken.safetensors', layout: -1 }]), 'broken.safetensors cannot be read');
});
