/**
 * src/engine/nativeFolder.ts: the tfjs-node package folder from what a user picks in
 * "Set up native backend" (the package itself, or a folder whose node_modules holds it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { tfjsNodeFolder } from '../../../src/engine/nativeFolder';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';

let tmp: TmpDir;
const pkg = (dir: string, name: string): void => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '4.22.0' }));
};

before(async () => {
  tmp = await makeTmpDir('rebasin-native-folder-');
  pkg(tmp.file('entry/node_modules/@tensorflow/tfjs-node'), '@tensorflow/tfjs-node');
  pkg(tmp.file('other'), 'left-pad');
});
after(() => tmp.remove());

describe('tfjsNodeFolder', () => {
  it('takes the package folder itself, or finds it under node_modules', () => {
    const inside = tmp.file('entry/node_modules/@tensorflow/tfjs-node');
    assert.equal(tfjsNodeFolder(inside), inside);
    assert.equal(tfjsNodeFolder(tmp.file('entry')), inside);
  });
  it('refuses any other folder in one line naming it', () => {
    for (const dir of [tmp.file('other'), tmp.file('absent')]) {
      assert.throws(() => tfjsNodeFolder(dir), (e: Error) => e.message.startsWith(`${dir}: not a @tensorflow/tfjs-node package folder`) && !e.message.includes('\n'));
    }
  });
});
