/** The capped reader of JSON side files (src/core/files.ts) and the readers that use it. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { InputFileError, readJsonObject, readJsonObjectSync } from '../../../src/core/files';
import { DataError, loadTokenizer } from '../../../src/core/data';
import { readLmConfig } from '../../../src/engine/lm/config';
import { lmCheckpointFamily } from '../../../src/core/families/lmCheckpoint';
import { ModelError } from '../../../src/engine/compute/modelErrors';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-files-');
});
after(async () => {
  await tmp.remove();
});

/** A folder holding `name` as a symbolic link to /dev/zero (endless bytes, stat size 0). */
function zeroLink(folder: string, name: string): string {
  const dir = path.join(tmp.path, folder);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  symlinkSync('/dev/zero', file);
  return file;
}

test('a JSON side file linked to /dev/zero is refused before any read, naming it', async () => {
  const file = zeroLink('zero', 'config.json');
  await assert.rejects(readJsonObject(file, 1000, 'config.json'), (e: unknown) => e instanceof InputFileError && e.kind === 'NotRegular' && e.message === 'zero/config.json: config.json is not a regular file (it is a device)');
  assert.throws(() => readJsonObjectSync(file, 1000, 'config.json'), (e: unknown) => e instanceof InputFileError && e.kind === 'NotRegular');
});

test('a JSON side file over its cap, not JSON, or not an object is refused in one line', async () => {
  const big = path.join(tmp.path, 'big.json');
  writeFileSync(big, `{"a": "${'x'.repeat(2000)}"}`);
  await assert.rejects(readJsonObject(big, 1000, 'spec'), (e: unknown) => e instanceof InputFileError && e.kind === 'TooLarge' && /^big\.json: spec is 2009 bytes, over the 1000-byte limit$/.test(e.message));
  const bad = path.join(tmp.path, 'bad.json');
  writeFileSync(bad, '{"a": ');
  await assert.rejects(readJsonObject(bad, 1000, 'spec'), (e: unknown) => e instanceof InputFileError && e.kind === 'NotJson' && /^bad\.json: spec is not valid JSON \(/.test(e.message) && !e.message.includes('\n'));
  const list = path.join(tmp.path, 'list.json');
  writeFileSync(list, '[1, 2]');
  assert.throws(() => readJsonObjectSync(list, 1000, 'spec'), (e: unknown) => e instanceof InputFileError && e.message === 'list.json: spec must be a JSON object');
  const ok = path.join(tmp.path, 'ok.json');
  writeFileSync(ok, '\ufeff{"model_type": "gpt2"}');
  assert.deepEqual(await readJsonObject(ok, 1000, 'config.json'), { model_type: 'gpt2' });
});

test('a config.json or tokenizer.json linked to /dev/zero is refused by the language-model readers', async () => {
  const config = zeroLink('lm', 'config.json');
  await assert.rejects(readLmConfig(config), (e: unknown) => e instanceof ModelError && e.message === `${config}: config.json is not a regular file (it is a device)`);
  // Deciding whether a weights file is a language model reads config.json beside it: refused, so not one.
  writeFileSync(path.join(tmp.path, 'lm', 'model.safetensors'), '');
  assert.equal(lmCheckpointFamily(path.join(tmp.path, 'lm', 'model.safetensors')), undefined);
  const tokenizer = zeroLink('tok', 'tokenizer.json');
  await assert.rejects(loadTokenizer(tokenizer), (e: unknown) => e instanceof DataError && e.message === `${tokenizer}: tokenizer.json is not a regular file (it is a device)`);
});
