/**
 * Token data (src/core/data/tokens*.ts, text*.ts): token-id arrays in .npy / .npz /
 * .safetensors of several integer dtypes, raw .txt / .jsonl tokenized with a fixture's
 * tokenizer.json and cut into windows, validation against the model's vocabulary and
 * positions, and the seeded masked-LM mask.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, loadTokenData, loadTokenizer, maskTokens, type TokenModelLimits } from '../../../../src/core/data';
import { textPieces } from '../../../../src/core/data/text';
import { hfFixture } from '../../helpers/hfFixtures';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

let tmp: TmpDir;
before(async () => {
  tmp = await makeTmpDir('rebasin-lm-tokens-');
});
after(() => tmp.remove());

const MODEL: TokenModelLimits = { vocab: 320, maxPositions: 64, source: 'model/config.json' };

// ------------------------------------------------------------------ writers

type IntDescr = '<i8' | '<u2' | '>i4' | '|u1' | '<i4';

function npyBytes(ids: readonly number[], shape: readonly number[], descr: string): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const size = Number(/\d+$/.exec(descr)![0]);
  const body = new Uint8Array(ids.length * size);
  const dv = new DataView(body.buffer);
  const little = !descr.startsWith('>');
  ids.forEach((v, i) => {
    if (descr.endsWith('i8')) dv.setBigInt64(8 * i, BigInt(v), little);
    else if (descr.endsWith('u2')) dv.setUint16(2 * i, v, little);
    else if (descr.endsWith('i4')) dv.setInt32(4 * i, v, little);
    else if (descr.endsWith('u1')) dv.setUint8(i, v);
    else if (descr.endsWith('f4')) dv.setFloat32(4 * i, v, little);
  });
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

/** A zip with stored entries (what numpy's savez writes). */
function zipStored(entries: Record<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const nameBytes = new TextEncoder().encode(name);
    const crc = zlib.crc32(data) >>> 0;
    const local = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const cd = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    cd.set(nameBytes, 46);
    parts.push(local, data);
    central.push(cd);
    offset += local.length + data.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, central.length, true);
  ev.setUint16(10, central.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return Buffer.concat([...parts, ...central, eocd]);
}

/** A single-tensor safetensors file of integers (little-endian). */
function safetensorsInts(name: string, dtype: 'I64' | 'I32' | 'U16' | 'F32', shape: number[], ids: readonly number[]): Uint8Array {
  const size = { I64: 8, I32: 4, U16: 2, F32: 4 }[dtype];
  const body = new Uint8Array(ids.length * size);
  const dv = new DataView(body.buffer);
  ids.forEach((v, i) => {
    if (dtype === 'I64') dv.setBigInt64(8 * i, BigInt(v), true);
    else if (dtype === 'I32') dv.setInt32(4 * i, v, true);
    else if (dtype === 'U16') dv.setUint16(2 * i, v, true);
    else dv.setFloat32(4 * i, v, true);
  });
  let header = JSON.stringify({ [name]: { dtype, shape, data_offsets: [0, body.length] } });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const out = new Uint8Array(8 + header.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(new TextEncoder().encode(header), 8);
  out.set(body, 8 + header.length);
  return out;
}

const ids3x5 = Array.from({ length: 15 }, (_, i) => (i * 37) % 320);

function write(name: string, bytes: Uint8Array | string): string {
  const f = path.join(tmp.path, name);
  writeFileSync(f, bytes);
  return f;
}

const dataError = (re: RegExp) => (e: unknown) => e instanceof DataError && re.test(e.message) && !e.message.includes('\n');

// ------------------------------------------------------------------ tests

describe('token-id arrays', () => {
  for (const descr of ['<i8', '<u2', '>i4', '|u1', '<i4'] as IntDescr[]) {
    it(`.npy of ${descr}`, async () => {
      const ids = descr === '|u1' ? ids3x5.map((v) => v % 256) : ids3x5;
      const f = write(`ids${descr.replace(/[<>|]/, '_')}.npy`, npyBytes(ids, [3, 5], descr));
      const d = await loadTokenData({ path: f }, MODEL);
      assert.deepEqual([d.n, d.t, Array.from(d.ids)], [3, 5, ids]);
      assert.equal(d.description, '3 sequences of 5 tokens');
    });
  }
  it('.npy with a limit reads only the first sequences', async () => {
    const f = write('limit.npy', npyBytes(ids3x5, [3, 5], '<i8'));
    const d = await loadTokenData({ path: f, limit: 2 }, MODEL);
    assert.deepEqual([d.n, Array.from(d.ids)], [2, ids3x5.slice(0, 10)]);
    assert.equal(d.description, '2 of 3 sequences of 5 tokens');
  });
  it('.npz with input_ids (stored, as numpy.savez writes)', async () => {
    const f = write('ids.npz', zipStored({ 'input_ids.npy': npyBytes(ids3x5, [3, 5], '<i8'), 'other.npy': npyBytes([1], [1], '<i8') }));
    const d = await loadTokenData({ path: f }, MODEL);
    assert.deepEqual(Array.from(d.ids), ids3x5);
    const bad = write('noids.npz', zipStored({ 'a.npy': npyBytes([1], [1, 1], '<i8'), 'b.npy': npyBytes([1], [1, 1], '<i8') }));
    await assert.rejects(loadTokenData({ path: bad }, MODEL), dataError(/noids\.npz: needs an array `input_ids`; has a, b/));
  });
  for (const dtype of ['I64', 'I32', 'U16'] as const) {
    it(`.safetensors input_ids ${dtype}`, async () => {
      const f = write(`ids-${dtype}.safetensors`, safetensorsInts('input_ids', dtype, [3, 5], ids3x5));
      const d = await loadTokenData({ path: f, limit: 5 }, MODEL);
      assert.deepEqual([d.n, d.t, Array.from(d.ids)], [3, 5, ids3x5]);
    });
  }
  it('the fixture reference_logits.safetensors input_ids (I64 [2, 16])', async () => {
    const d = await loadTokenData({ path: path.join(hfFixture('gpt2-tiny'), 'reference_logits.safetensors') }, MODEL);
    assert.deepEqual([d.n, d.t], [2, 16]);
    assert.ok(d.ids.every((v) => v >= 0 && v < 320));
  });
  it('refuses, in one line naming the file: ids at or above the vocabulary, T over the positions, non-integers, wrong rank, damage', async () => {
    const big = write('big.npy', npyBytes([1, 2, 320, 4], [2, 2], '<i8'));
    await assert.rejects(loadTokenData({ path: big }, MODEL), dataError(/big\.npy: token id 320 at sequence 1, position 0 is not below the vocabulary size 320 \(model\/config\.json\)/));
    const neg = write('neg.npy', npyBytes([1, -2], [1, 2], '<i8'));
    await assert.rejects(loadTokenData({ path: neg }, MODEL), dataError(/neg\.npy: token id -2 at sequence 0, position 1 is not a valid id/));
    const long = write('long.npy', npyBytes(new Array(65).fill(1), [1, 65], '<i4'));
    await assert.rejects(loadTokenData({ path: long }, MODEL), dataError(/long\.npy: sequences of 65 tokens exceed the model's 64 positions \(model\/config\.json\)/));
    const float = write('float.npy', npyBytes([1, 2], [1, 2], '<f4'));
    await assert.rejects(loadTokenData({ path: float }, MODEL), dataError(/float\.npy: token ids must be integers, the npy array holds '<f4'/));
    const flat = write('flat.npy', npyBytes([1, 2], [2], '<i8'));
    await assert.rejects(loadTokenData({ path: flat }, MODEL), dataError(/flat\.npy: token ids must be a 2-d array \[sequences, tokens\], got \[2\]/));
    const cut = write('cut.npy', npyBytes(ids3x5, [3, 5], '<i8').subarray(0, 140));
    await assert.rejects(loadTokenData({ path: cut }, MODEL), dataError(/cut\.npy: npy data holds \d+ bytes, shape \[3, 5\] of '<i8' needs 120/));
    const fl = write('float.safetensors', safetensorsInts('input_ids', 'F32', [1, 2], [1, 2]));
    await assert.rejects(loadTokenData({ path: fl }, MODEL), dataError(/float\.safetensors: `input_ids` must hold integers, it is F32/));
    const other = write('other.safetensors', safetensorsInts('tokens', 'I64', [1, 2], [1, 2]));
    await assert.rejects(loadTokenData({ path: other }, MODEL), dataError(/other\.safetensors: needs a tensor `input_ids`; has tokens/));
    await assert.rejects(loadTokenData({ path: path.join(tmp.path, 'missing.npy') }, MODEL), dataError(/missing\.npy: cannot open token data \(ENOENT\)/));
  });
  it('a huge declared shape is refused before anything is allocated', async () => {
    // Header claims [2^20, 2^10] int64 (8 GiB) but the file is tiny: the size check names it.
    const f = write('claims.npy', npyBytes([1, 2], [1024 * 1024, 1024], '<i8').subarray(0, 140));
    await assert.rejects(loadTokenData({ path: f }, MODEL), dataError(/claims\.npy: npy data holds/));
  });
});

describe('raw text with tokenizer.json', () => {
  const text = 'This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public License.\nEveryone is permitted to copy and distribute verbatim copies of this license document.\n';
  it('.txt: the stream of the whole text cut into windows of seq-len, the partial window dropped', async () => {
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const tok = await loadTokenizer(tokenizer);
    const all = tok.encode(text, false);
    const f = write('gpl.txt', text);
    const d = await loadTokenData({ path: f, tokenizer, seqLen: 16 }, MODEL);
    const n = Math.floor(all.length / 16);
    assert.deepEqual([d.n, d.t], [n, 16]);
    assert.deepEqual(Array.from(d.ids), all.slice(0, n * 16));
    assert.match(d.description, new RegExp(`^${n} windows of 16 tokens from ${all.length} tokens of text`));
    const limited = await loadTokenData({ path: f, tokenizer, seqLen: 16, limit: 2 }, MODEL);
    assert.equal(limited.n, 2);
    // Default window: the model's maximum position (64 here), at most 512.
    const twice = write('gpl2.txt', text.repeat(3));
    const dflt = await loadTokenData({ path: twice, tokenizer }, MODEL);
    assert.equal(dflt.t, 64);
  });
  it('.jsonl: each record\'s "text" tokenized on its own, documents following one another', async () => {
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const tok = await loadTokenizer(tokenizer);
    const docs = ['Copyright (C) 2007 Free Software Foundation.', 'Preamble: the GNU General Public License is a free, copyleft license.', 'The licenses for most software are designed to take away your freedom.'];
    const f = write('docs.jsonl', docs.map((t, i) => JSON.stringify({ id: i, text: t })).join('\n') + '\n\n');
    const stream = docs.flatMap((t) => tok.encode(t, true));
    const d = await loadTokenData({ path: f, tokenizer, seqLen: 8 }, MODEL);
    assert.deepEqual(Array.from(d.ids), stream.slice(0, d.n * 8));
    assert.equal(d.n, Math.floor(stream.length / 8));
    const bad = write('bad.jsonl', '{"text": "ok"}\n{"txt": "no"}\n');
    await assert.rejects(loadTokenData({ path: bad, tokenizer, seqLen: 2 }, MODEL), dataError(/bad\.jsonl: line 2 has no "text" string field/));
    const broken = write('broken.jsonl', '{"text": "ok"}\n{oops\n');
    await assert.rejects(loadTokenData({ path: broken, tokenizer, seqLen: 2 }, MODEL), dataError(/broken\.jsonl: line 2 is not valid JSON/));
  });
  it('refuses text without a tokenizer, a window over the positions, too little text, invalid UTF-8', async () => {
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const f = write('short.txt', 'Hi.');
    await assert.rejects(loadTokenData({ path: f }, MODEL), dataError(/short\.txt: raw text needs the checkpoint's tokenizer\.json/));
    await assert.rejects(loadTokenData({ path: f, tokenizer, seqLen: 65 }, MODEL), dataError(/short\.txt: sequence length 65 exceeds the model's 64 positions/));
    await assert.rejects(loadTokenData({ path: f, tokenizer, seqLen: 16 }, MODEL), dataError(/short\.txt: the text gives 3 tokens, fewer than one window of 16/));
    const bin = write('bin.txt', Buffer.from([0x41, 0xff, 0xfe, 0x41]));
    await assert.rejects(loadTokenData({ path: bin, tokenizer, seqLen: 2 }, MODEL), dataError(/bin\.txt: not valid UTF-8/));
  });
  it('a .txt holding a 5 MB word is tokenized like the word alone (it overflowed the stack), a BOM is not text', async () => {
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const tok = await loadTokenizer(tokenizer);
    const word = '1'.repeat(5_000_000);
    const f = write('word.txt', `\ufeffhello\n${word}\n`);
    const d = await loadTokenData({ path: f, tokenizer, seqLen: 8, limit: 3 }, MODEL);
    const stream = [...tok.encode('hello\n', false), ...tok.encode(`${word}\n`, false).slice(0, 24)];
    assert.deepEqual(Array.from(d.ids), stream.slice(0, 24));
  });
  it('raw text is held within the memory budget: windows beyond it are refused naming the file', async () => {
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const f = write('budget.txt', text.repeat(4));
    // 3 windows of 8 tokens, held twice as int32: 192 bytes.
    await assert.rejects(loadTokenData({ path: f, tokenizer, seqLen: 8 }, MODEL, 192), dataError(/budget\.txt: 4 windows of 8 tokens need 256 B, over the memory budget of 192 B/));
    await assert.rejects(loadTokenData({ path: f, tokenizer, seqLen: 8, limit: 5 }, MODEL, 192), dataError(/budget\.txt: 5 windows of 8 tokens need 320 B, over the memory budget of 192 B/));
    assert.equal((await loadTokenData({ path: f, tokenizer, seqLen: 8, limit: 3 }, MODEL, 192)).n, 3);
  });
  it('a large .txt is read in pieces of whole lines that add up to the file', async () => {
    const line = 'The GNU General Public License is a free, copyleft license for software and other kinds of works.\n';
    const body = line.repeat(Math.ceil((2.5 * 1024 * 1024) / line.length));
    const f = write('large.txt', body);
    let joined = '';
    let pieces = 0;
    for await (const p of textPieces(f)) {
      assert.ok(p.endsWith('\n'), 'each piece ends after a line break');
      joined += p;
      pieces++;
    }
    assert.ok(pieces >= 2, `${pieces} pieces`);
    assert.equal(joined, body);
    const tokenizer = path.join(hfFixture('gpt2-tiny'), 'tokenizer.json');
    const d = await loadTokenData({ path: f, tokenizer, seqLen: 32, limit: 3 }, MODEL);
    const tok = await loadTokenizer(tokenizer);
    assert.deepEqual(Array.from(d.ids), tok.encode(line.repeat(20), false).slice(0, 96));
  });
});

describe('masked-LM mask', () => {
  const ids = Int32Array.from({ length: 20000 }, (_, i) => 5 + (i % 300));
  it('selects about 15%, replaces 80% of those by the mask, 10% by random ids, keeps 10%, never special ids', () => {
    const specialIds = new Set([5, 6]);
    const m = maskTokens(ids, { maskId: 1, vocab: 320, seed: 4, specialIds }, 'ids');
    const rate = m.positions.length / ids.length;
    assert.ok(rate > 0.13 && rate < 0.155, `selected ${rate}`);
    let masked = 0;
    let kept = 0;
    for (let j = 0; j < m.positions.length; j++) {
      const i = m.positions[j];
      assert.ok(!specialIds.has(ids[i]));
      assert.equal(m.targets[j], ids[i]);
      if (m.input[i] === 1) masked++;
      else if (m.input[i] === ids[i]) kept++;
    }
    const k = m.positions.length;
    assert.ok(Math.abs(masked / k - 0.8) < 0.03, `masked ${masked / k}`);
    assert.ok(Math.abs(kept / k - 0.1) < 0.03, `kept ${kept / k} (random ids can equal the original)`);
    let changedElsewhere = 0;
    const sel = new Set(m.positions);
    for (let i = 0; i < ids.length; i++) if (!sel.has(i) && m.input[i] !== ids[i]) changedElsewhere++;
    assert.equal(changedElsewhere, 0);
  });
  it('is the same for the same seed and differs for another', () => {
    const a = maskTokens(ids, { maskId: 1, vocab: 320, seed: 9 }, 'ids');
    const b = maskTokens(ids, { maskId: 1, vocab: 320, seed: 9 }, 'ids');
    const c = maskTokens(ids, { maskId: 1, vocab: 320, seed: 10 }, 'ids');
    assert.deepEqual(a, b);
    assert.notDeepEqual(Array.from(a.positions), Array.from(c.positions));
  });
});
