/**
 * Which checkpoint merge pairs its second input with (core/symmetry/mergePartner.ts), the one
 * decision the engine's merge and the extension's check of a merge's inputs share: B' written by
 * align --symmetry orthogonal, with an untied `lm_head.weight` a tied A lacks, pairs with the A'
 * its metadata names and matches A''s tensors (not A's); a plain B pairs with A; so does any input
 * of a merge of three.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCompatible } from '../../../../src/core/permspec';
import { openCheckpoint, writeSafetensors } from '../../../../src/core/safetensors';
import { foldedMergeReference, mergePartner } from '../../../../src/core/symmetry/mergePartner';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;

/** A checkpoint of zeros with these tensors ([4, 4] each) and metadata. */
async function write(file: string, names: readonly string[], metadata: Record<string, string> = {}): Promise<string> {
  await writeSafetensors(file, names.map((name) => ({ name, dtype: 'F32', shape: [4, 4], read: async () => new Uint8Array(64) })), { metadata });
  return file;
}

async function tensorsOf(file: string): Promise<{ name: string; shape: readonly number[] }[]> {
  const ck = await openCheckpoint(file);
  try {
    return ck.tensors.map((t) => ({ name: t.name, shape: t.shape }));
  } finally {
    await ck.close();
  }
}

before(async () => {
  tmp = await makeTmpDir('rebasin-merge-partner-');
});
after(() => tmp?.remove());

test('B\' of align --symmetry orthogonal pairs with its A\' (untied head); B and three inputs pair with A', async () => {
  const tied = ['transformer.wte.weight', 'transformer.h.0.mlp.c_fc.weight'];
  const a = await write(tmp.file('a.safetensors'), tied);
  const aFolded = await write(tmp.file('b-prime.a-folded.safetensors'), [...tied, 'lm_head.weight']);
  const bPrime = await write(tmp.file('b-prime.safetensors'), [...tied, 'lm_head.weight'], {
    'rebasin.align.symmetry': 'orthogonal',
    'rebasin.align.referenceFolded': aFolded,
  });
  const b = await write(tmp.file('b.safetensors'), tied);
  // Without the pairing, B''s head is a tensor A lacks (what the extension used to refuse).
  assert.match(checkCompatible(await tensorsOf(a), await tensorsOf(bPrime), 'a', 'b-prime')?.message ?? '', /`lm_head\.weight` is not in a/);

  assert.equal(await foldedMergeReference([a, bPrime]), aFolded);
  assert.equal(await mergePartner([a, bPrime]), aFolded);
  assert.equal(checkCompatible(await tensorsOf(await mergePartner([a, bPrime])), await tensorsOf(bPrime), 'a-folded', 'b-prime'), null);

  assert.equal(await foldedMergeReference([a, b]), undefined);
  assert.equal(await mergePartner([a, b]), a);
  // MergeMany aligns every input to A itself: no A' there.
  assert.equal(await mergePartner([a, bPrime, b]), a);
  // A B' of a permutation alignment (no symmetry entry) is B permuted: it pairs with A.
  const permuted = await write(tmp.file('permuted.safetensors'), tied, { 'rebasin.align.method': 'weight', 'rebasin.align.referenceFolded': aFolded });
  assert.equal(await mergePartner([a, permuted]), a);
});
