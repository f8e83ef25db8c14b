import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { crc32, encodePng, PngError } from '../../../src/core/png';
import { permutationPng, similarityPng } from '../../../src/demo/heatmapImage';
import { blockFactor, downsample, permutationCells, renderMatrix, toRgba } from '../../../shared/pixels/heatmap';
import { luminance, parseColor, viridis } from '../../../shared/pixels/colormap';

interface DecodedPng {
  width: number;
  height: number;
  rgba: Uint8Array;
  chunks: string[];
}

/** Independent reader for the subset we write (RGBA8, filter 0), checking every CRC. */
function decodePng(file: Buffer): DecodedPng {
  assert.deepEqual([...file.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let pos = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const chunks: string[] = [];
  while (pos < file.length) {
    const len = file.readUInt32BE(pos);
    const type = file.toString('latin1', pos + 4, pos + 8);
    const data = file.subarray(pos + 8, pos + 8 + len);
    const crc = file.readUInt32BE(pos + 8 + len);
    assert.equal((crc32(file.subarray(pos + 4, pos + 8 + len)) ^ 0xffffffff) >>> 0, crc, `crc of ${type}`);
    chunks.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.deepEqual([...data.subarray(8)], [8, 6, 0, 0, 0]);
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  assert.equal(raw.length, (stride + 1) * height);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (stride + 1)], 0, 'filter type None');
    rgba.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, rgba, chunks };
}

test('crc32 matches the published check value', () => {
  assert.equal((crc32(Buffer.from('123456789')) ^ 0xffffffff) >>> 0, 0xcbf43926);
});

test('encodePng round-trips arbitrary pixels', () => {
  const w = 7;
  const h = 5;
  const rgba = new Uint8Array(w * h * 4);
  let s = 12345;
  for (let i = 0; i < rgba.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    rgba[i] = s & 0xff;
  }
  const d = decodePng(encodePng(rgba, w, h));
  assert.equal(d.width, w);
  assert.equal(d.height, h);
  assert.deepEqual(d.chunks, ['IHDR', 'IDAT', 'IEND']);
  assert.deepEqual([...d.rgba], [...rgba]);
});

test('encodePng rejects a wrong buffer length and size', () => {
  assert.throws(() => encodePng(new Uint8Array(10), 2, 2), (e: unknown) => e instanceof PngError && e.kind === 'BadLength');
  assert.throws(() => encodePng(new Uint8Array(0), 0, 0), (e: unknown) => e instanceof PngError && e.kind === 'BadSize');
});

test('downsample by block mean and max', () => {
  // 4×4 matrix, 2×2 blocks.
  const m = Float32Array.from([1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 5, 5, 0, 0, 5, NaN]);
  const mean = downsample(m, 4, 2, 'mean');
  assert.equal(mean.side, 2);
  assert.deepEqual([...mean.values], [2.5, 0, 0, 5]);
  const max = downsample(m, 4, 2, 'max');
  assert.deepEqual([...max.values], [4, 0, 0, 5]);
  // Partial edge blocks: 5×5 with block 2 gives 3×3.
  assert.equal(downsample(new Float32Array(25).fill(1), 5, 2).side, 3);
  assert.equal(blockFactor(4096, 1024), 4);
  assert.equal(blockFactor(1000, 1024), 1);
});

test('permutation cells put one bright cell per row at perm[i]', () => {
  const perm = [2, 0, 3, 1];
  const cells = permutationCells(perm, 1);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.equal(cells[i * 4 + j], perm[i] === j ? 1 : 0);
});

test('toRgba clamps to the lut ends and colours NaN', () => {
  const lut = viridis();
  const px = toRgba([-5, 0, 1, 9, NaN], lut, 0, 1, [1, 2, 3]);
  assert.deepEqual([...px.subarray(0, 4)], [...lut.subarray(0, 4)]);
  assert.deepEqual([...px.subarray(4, 8)], [...lut.subarray(0, 4)]);
  assert.deepEqual([...px.subarray(8, 12)], [...lut.subarray(255 * 4)]);
  assert.deepEqual([...px.subarray(12, 16)], [...lut.subarray(255 * 4)]);
  assert.deepEqual([...px.subarray(16, 20)], [1, 2, 3, 255]);
});

test('viridis lightness increases monotonically (readable on light and dark)', () => {
  const lut = viridis();
  for (let i = 16; i < 256; i += 16) {
    const a = luminance([lut[(i - 16) * 4], lut[(i - 16) * 4 + 1], lut[(i - 16) * 4 + 2]]);
    const b = luminance([lut[i * 4], lut[i * 4 + 1], lut[i * 4 + 2]]);
    assert.ok(b > a, `entry ${i}`);
  }
  assert.deepEqual(parseColor('#3794ff'), [0x37, 0x94, 0xff]);
  assert.deepEqual(parseColor(' rgb(1, 2, 3)'), [1, 2, 3]);
});

test('similarity PNG of an identity-like matrix has a bright diagonal, block-reduced to maxSide', () => {
  const n = 64;
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = i === j ? 1 : 0.05 * Math.sin(i * 7 + j);
  const img = similarityPng(m, n, { maxSide: 32, mode: 'max', scale: 2 });
  assert.equal(img.width, 64);
  const d = decodePng(img.png);
  assert.equal(d.width, 64);
  assert.equal(d.height, 64);
  const lum = (x: number, y: number) => {
    const p = (y * d.width + x) * 4;
    return luminance([d.rgba[p], d.rgba[p + 1], d.rgba[p + 2]]);
  };
  for (let k = 0; k < 64; k += 5) {
    const off = (k + 20) % 64;
    assert.ok(lum(k, k) > lum(off, k) + 0.3, `diagonal pixel ${k} brighter`);
  }
  // Same pixels as the webview pipeline (renderMatrix) upscaled ×2.
  const r = renderMatrix(m, n, viridis(), { maxSide: 32, mode: 'max' });
  const p0 = (10 * 2 * 64 + 6 * 2) * 4;
  const q0 = (10 * 32 + 6) * 4;
  assert.deepEqual([...d.rgba.subarray(p0, p0 + 4)], [...r.rgba.subarray(q0, q0 + 4)]);
});

test('permutation PNG marks (i, perm[i])', () => {
  const perm = [3, 1, 0, 2];
  const d = decodePng(permutationPng(perm, { dark: true }).png);
  assert.equal(d.width, 4);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const p = (i * 4 + j) * 4;
      const bright = luminance([d.rgba[p], d.rgba[p + 1], d.rgba[p + 2]]) > 0.3;
      assert.equal(bright, perm[i] === j, `cell ${i},${j}`);
    }
  }
});
