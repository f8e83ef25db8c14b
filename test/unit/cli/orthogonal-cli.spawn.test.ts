/**
 * `--symmetry orthogonal` through the built CLI (issue 21 item 1): on B = g . fold(A) for the
 * gpt2-tiny fixture and a random element g of the generalized group, `align` writes B' and A'
 * (folders, untied head, config.json saying so), `barrier --aligned` evaluates A' to B' (flat:
 * B' = A'), `merge A B'` merges with A', `barrier --symmetry orthogonal` aligns in the run,
 * `align --symmetry orthogonal` with the default method (weight matching, no data) aligns it too,
 * and BERT is refused in one line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DenseTensor } from '../../../src/core/checkpoint';
import { mulberry32 } from '../../../src/core/matching/prng';
import { writeSafetensors } from '../../../src/core/safetensors';
import { applyTransformerGroup, foldNorms, randomTransformerGroupElement, transformerLayout } from '../../../src/core/symmetry';
import type { AlignResult, BarrierResult, MergeResult } from '../../../src/engine/protocol';
import { loadLmCheckpoint } from '../../../src/engine/lm/checkpoint';
import { buildDist, runCli } from '../helpers/cli';
import { hfFixture } from '../helpers/hfFixtures';
import { randomTokens } from '../helpers/lmReference';
import { makeTmpDir, type TmpDir } from '../helpers/tmp';
import { writeTokensNpy } from '../helpers/trainGpt2';

let tmp: TmpDir;
before(async () => {
  buildDist();
  tmp = await makeTmpDir('rebasin-orthsym-cli-');
});
after(() => tmp.remove());

describe('rebasin --symmetry orthogonal (built CLI)', () => {
  it('align writes B\' and A\', barrier --aligned and merge use A\', barrier aligns orthogonally in the run; BERT is refused in one line', async () => {
    const a = hfFixture('gpt2-tiny');
    const lm = await loadLmCheckpoint(a);
    const folded = foldNorms(lm.tensors, transformerLayout(lm.tensors, lm.config));
    const moved = applyTransformerGroup(folded.tensors, folded.layout, randomTransformerGroupElement(folded.layout, mulberry32(17)));
    const b = tmp.file('b');
    mkdirSync(b);
    const config = JSON.parse(readFileSync(path.join(a, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(b, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
    copyFileSync(path.join(a, 'tokenizer.json'), path.join(b, 'tokenizer.json'));
    const bytes = (x: DenseTensor): Uint8Array => new Uint8Array(x.data.buffer, x.data.byteOffset, x.data.byteLength);
    await writeSafetensors(path.join(b, 'model.safetensors'), [...moved].map(([name, x]) => ({ name, dtype: 'F32', shape: x.shape, read: async () => bytes(x) })), { metadata: { format: 'pt' } });
    const data = tmp.file('ids.npy');
    writeTokensNpy(data, randomTokens(16, 16, lm.config.vocab, 3), 16, 16);

    const out = tmp.file('aligned');
    const al = runCli(['align', a, b, '--method', 'activation', '--symmetry', 'orthogonal', '--data', data, '--out', out, '--json']);
    assert.equal(al.code, 0, al.stderr);
    const r = JSON.parse(al.stdout) as AlignResult;
    assert.equal(r.symmetry, 'orthogonal');
    assert.equal(r.referenceFolded, `${out}.a-folded`);
    assert.equal(r.equivalence?.ok, true);
    assert.equal(r.orthogonal?.referenceEquivalence.ok, true);
    for (const dir of [out, `${out}.a-folded`]) {
      assert.ok(existsSync(path.join(dir, 'model.safetensors')), dir);
      assert.equal((JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { tie_word_embeddings: boolean }).tie_word_embeddings, false, `${dir}/config.json`);
    }

    const ba = runCli(['barrier', a, b, '--aligned', out, '--data', data, '--steps', '3', '--workers', '1', '--json']);
    assert.equal(ba.code, 0, ba.stderr);
    const br = JSON.parse(ba.stdout) as BarrierResult;
    assert.equal(br.alignedFrom?.symmetry, 'orthogonal');
    assert.equal(br.alignedFrom?.referenceFolded, `${out}.a-folded`);
    assert.ok(br.barrier.aligned !== undefined && Math.abs(br.barrier.aligned) < 1e-3, `aligned barrier ${br.barrier.aligned} (B' = A')`);

    const merged = tmp.file('merged');
    const me = runCli(['merge', a, out, '--out', merged, '--json']);
    assert.equal(me.code, 0, me.stderr);
    const mr = JSON.parse(me.stdout) as MergeResult;
    assert.equal(mr.symmetry, 'orthogonal');
    assert.equal(mr.referenceFolded, `${out}.a-folded`);

    const run = runCli(['barrier', a, b, '--method', 'activation', '--symmetry', 'orthogonal', '--data', data, '--steps', '3', '--workers', '1', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const rr = JSON.parse(run.stdout) as BarrierResult;
    assert.equal(rr.align?.symmetry, 'orthogonal');
    assert.equal(rr.alignedFrom?.symmetry, 'orthogonal');
    assert.ok(rr.barrier.aligned !== undefined && Math.abs(rr.barrier.aligned) < 1e-3, `aligned barrier ${rr.barrier.aligned}`);

    // Weight matching, the default method: no data needed.
    const weightOut = tmp.file('aligned-weight');
    const wm = runCli(['align', a, b, '--out', weightOut, '--symmetry', 'orthogonal', '--json']);
    assert.equal(wm.code, 0, wm.stderr);
    const wr = JSON.parse(wm.stdout) as AlignResult;
    assert.equal(wr.method, 'weight');
    assert.equal(wr.symmetry, 'orthogonal');
    assert.equal(wr.written, true);
    assert.equal(wr.referenceFolded, `${weightOut}.a-folded`);
    assert.ok(wr.equivalence?.ok && wr.orthogonal?.referenceEquivalence.ok);
    assert.ok(wr.iterations >= 2 && wr.objectiveAfter > wr.objectiveBefore, `${wr.iterations} sweeps, ${wr.objectiveBefore} -> ${wr.objectiveAfter}`);
    const wb = runCli(['barrier', a, b, '--aligned', weightOut, '--data', data, '--steps', '3', '--workers', '1', '--json']);
    assert.equal(wb.code, 0, wb.stderr);
    const wbr = JSON.parse(wb.stdout) as BarrierResult;
    assert.ok(wbr.barrier.aligned !== undefined && Math.abs(wbr.barrier.aligned) < 1e-3, `aligned barrier ${wbr.barrier.aligned} (weight matching: B' = A')`);

    const bert = hfFixture('bert-tiny');
    const refused = runCli(['align', bert, bert, '--method', 'activation', '--symmetry', 'orthogonal', '--data', data, '--out', tmp.file('bert-out')]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /BERT/);
  });
});
