import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { dataFileProblem, isDataFile } from '../../../../src/core/data';
import { openCheckpoint } from '../../../../src/core/safetensors';
import { hfFixture, hfFixturesDir } from '../../helpers/hfFixtures';

async function names(file: string): Promise<string[]> {
  const ck = await openCheckpoint(file);
  try {
    return ck.tensors.map((t) => t.name);
  } finally {
    await ck.close();
  }
}

test('recorded reference logits (input_ids + logits) are data, not a model; every fixture model is a model', async () => {
  let checked = 0;
  for (const dir of readdirSync(hfFixturesDir())) {
    const logits = path.join(hfFixture(dir), 'reference_logits.safetensors');
    if (!existsSync(logits)) continue;
    assert.equal(isDataFile(await names(logits)), true, logits);
    const model = path.join(hfFixture(dir), 'model.safetensors');
    if (existsSync(model)) assert.equal(isDataFile(await names(model)), false, model);
    checked++;
  }
  assert.ok(checked >= 5, `${checked} fixture folders with reference logits`);
  assert.equal(dataFileProblem(['input_ids', 'logits']), 'holds data (input_ids, logits), not a model');
});

test('x/y pairs of either split and token ids are data; a model with a tensor named like data is not', () => {
  assert.equal(isDataFile(['x', 'y']), true);
  assert.equal(isDataFile(['x_train', 'y_train', 'x_test', 'y_test']), true);
  assert.equal(isDataFile(['test_images', 'test_labels']), true);
  assert.equal(isDataFile(['input_ids']), true);
  assert.equal(isDataFile(['x', 'layers.0.weight']), false);
  assert.equal(isDataFile([]), false, 'an empty file is not called data');
});
