import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DTYPES, DTYPE_BITS, SafetensorsError, openSafetensors, parseSafetensorsBytes, type ParsedHeader } from '../../../../src/core/safetensors';
import { findDuplicateKey } from '../../../../src/core/safetensors/duplicate-keys';
import { makeTmpDir, type TmpDir } from '../../helpers/tmp';

/** Seeded and bounded so the whole file runs in well under 30 s on two cores. */
const SEED = 20260222;
const MAX_CASE_MS = 1000;
/** Multi-megabyte headers get more room: this 2-core machine is shared with other test runs. */
const MAX_HUGE_CASE_MS = 2500;

function rawFile(header: string | Uint8Array, dataLength: number, length?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + Math.max(0, dataLength));
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

/** The invariants every accepted file satisfies: sorted names, offsets tiling the data exactly. */
function checkInvariants(parsed: ParsedHeader, bytes: Uint8Array): void {
  assert.equal(parsed.dataStart, 8 + parsed.headerLength);
  assert.equal(parsed.dataLength, bytes.length - parsed.dataStart);
  const byOffset = [...parsed.tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let cursor = 0;
  for (const t of byOffset) {
    assert.equal(t.dataOffsets[0], cursor);
    assert.equal(t.dataOffsets[1] - t.dataOffsets[0], t.byteLength);
    assert.equal(t.byteLength * 8, t.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[t.dtype]);
    cursor = t.dataOffsets[1];
  }
  assert.equal(cursor, parsed.dataLength);
  const names = parsed.tensors.map((t) => t.name);
  assert.equal(new Set(names).size, names.length);
}

/** Parses, and requires either a valid result or a SafetensorsError, quickly. Returns which. */
function parseOrRefuse(bytes: Uint8Array, budgetMs = MAX_CASE_MS): 'ok' | 'refused' {
  const start = performance.now();
  try {
    checkInvariants(parseSafetensorsBytes(bytes), bytes);
    return 'ok';
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    assert.ok(!e.message.includes('\n'), 'one-line message');
    return 'refused';
  } finally {
    assert.ok(performance.now() - start < budgetMs, `case took ${performance.now() - start} ms`);
  }
}

const dtypeArb = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...DTYPES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
const dimArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: -3, max: -1 }) },
  { weight: 1, arbitrary: fc.constantFrom(1.5, 2 ** 31, 2 ** 40, 2 ** 53, 2 ** 64, 1e300, -0) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
const nameArb = fc.string({ unit: 'binary', maxLength: 10 });

interface EntrySpec {
  name: string;
  dtype: unknown;
  shape: unknown[];
  offsetMode: 'contiguous' | 'random' | 'swapped' | 'missing' | 'notAnObject';
  randomOffsets: [number, number];
  junk: unknown;
}

const entryArb: fc.Arbitrary<EntrySpec> = fc.record({
  name: nameArb,
  dtype: dtypeArb,
  shape: fc.array(dimArb, { maxLength: 4 }),
  offsetMode: fc.constantFrom('contiguous', 'contiguous', 'contiguous', 'random', 'swapped', 'missing', 'notAnObject'),
  randomOffsets: fc.tuple(fc.integer({ min: -4, max: 600 }), fc.integer({ min: -4, max: 600 })),
  junk: fc.jsonValue({ maxDepth: 2 }),
});

/** Builds header text by hand (so keys can repeat) and a data length near the right one. */
function buildHeader(entries: EntrySpec[], metadata: unknown, duplicate: boolean, dataSkew: number): Uint8Array {
  let cursor = 0;
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const e of entries) {
    const known = typeof e.dtype === 'string' && DTYPES.includes(e.dtype);
    const elements = e.shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)
      ? (e.shape as number[]).reduce((a, b) => a * b, 1)
      : 1;
    const bytes = known && Number.isSafeInteger(elements) ? Math.floor((elements * DTYPE_BITS[e.dtype as string]) / 8) : 4;
    let offsets: unknown = [cursor, cursor + bytes];
    if (e.offsetMode === 'random') offsets = e.randomOffsets;
    if (e.offsetMode === 'swapped') offsets = [cursor + bytes, cursor];
    if (Number.isSafeInteger(bytes)) cursor += bytes;
    const body =
      e.offsetMode === 'notAnObject'
        ? JSON.stringify(e.junk)
        : JSON.stringify(e.offsetMode === 'missing' ? { dtype: e.dtype, shape: e.shape } : { dtype: e.dtype, shape: e.shape, data_offsets: offsets });
    parts.push(`${JSON.stringify(e.name)}:${body ?? 'null'}`);
  }
  if (duplicate && entries.length > 0) parts.push(parts[parts.length - 1]);
  const header = `{${parts.join(',')}}`;
  const length = Math.max(0, Math.min(cursor, 1 << 20) + dataSkew);
  return rawFile(header, length);
}

describe('safetensors reader under property-based fuzzing', () => {
  let dir: TmpDir;
  before(async () => {
    dir = await makeTmpDir('rebasin-fuzz-');
  });
  after(() => dir.remove());

  it('random bytes: a parse or a SafetensorsError, never another exception', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => void parseOrRefuse(bytes)), { seed: SEED, numRuns: 2000 });
  });

  it('the duplicate-key scan finds exactly the repeated keys, whatever the escapes in names and values', () => {
    const tricky = fc.string({ unit: fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', ',', ':', 'é', '\u0000', '\n', '𝛼'), maxLength: 6 });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(tricky, fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 5 }), fc.boolean(), (inner, obj, repeat) => {
        const parts = Object.entries({ ...obj, nested: inner }).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`);
        const first = Object.keys(obj)[0];
        // Repeat the first key spelled with \u escapes, so only a decoded comparison finds it.
        const spelled = `"${[...first].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
        if (repeat && first.length === [...first].length) parts.push(`${spelled}:1`);
        const text = `{${parts.join(',')}}`;
        const found = findDuplicateKey(text);
        if (repeat && first.length === [...first].length) assert.equal(found?.key, first);
        else assert.equal(found, undefined);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('a valid prefix followed by random JSON or text', () => {
    const text = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v) ?? ''), fc.string({ unit: 'binary', maxLength: 64 }));
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 64 }), (header, data) => void parseOrRefuse(rawFile(header, data))),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('structured headers: random dtypes, shapes, offsets, unicode names, metadata, duplicate keys', () => {
    const metadataArb = fc.option(
      fc.oneof({ weight: 4, arbitrary: fc.dictionary(nameArb, fc.string({ maxLength: 6 }), { maxKeys: 3 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }),
      { nil: undefined },
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 6 }),
        metadataArb,
        fc.boolean(),
        fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }),
        (entries, metadata, duplicate, skew) => {
          if (parseOrRefuse(buildHeader(entries, metadata, duplicate, skew)) === 'ok') accepted++;
        },
      ),
      { seed: SEED, numRuns: 1500 },
    );
    assert.ok(accepted > 50, `the generator reaches valid files too (${accepted} accepted)`);
  });

  it('mutated valid files: flipped bytes, truncation, appended bytes, rewritten length prefix', () => {
    const validArb = fc.array(
      fc.record({ name: nameArb, dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) }),
      { maxLength: 4 },
    ).map((ts) => {
      const entries: EntrySpec[] = ts.map((t) => ({ ...t, shape: t.dtype.startsWith('F4') || t.dtype.startsWith('F6') ? [8] : t.shape, offsetMode: 'contiguous', randomOffsets: [0, 0], junk: null }));
      return buildHeader(entries, { k: 'v' }, false, 0);
    });
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ op: fc.constant('prefix' as const), length: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    );
    fc.assert(
      fc.property(validArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (valid, mutations) => {
        let bytes = Uint8Array.from(valid);
        for (const m of mutations) {
          if (m.op === 'set' && bytes.length > 0) bytes[m.at % bytes.length] = m.value;
          if (m.op === 'truncate') bytes = bytes.slice(0, m.at % (bytes.length + 1));
          if (m.op === 'append') bytes = Uint8Array.from([...bytes, ...m.bytes]);
          if (m.op === 'prefix' && bytes.length >= 8) new DataView(bytes.buffer).setBigUint64(0, m.length, true);
        }
        parseOrRefuse(bytes);
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  it('deeply nested and huge headers are refused or parsed quickly, without stack overflow', () => {
    const depth = 200_000;
    const cases: Array<[string, Uint8Array]> = [
      ['nested arrays at top', rawFile('['.repeat(depth) + ']'.repeat(depth), 0)],
      ['nested objects in an entry', rawFile(`{"a":${'{"x":'.repeat(depth)}1${'}'.repeat(depth)}}`, 0)],
      ['nested objects with a deep duplicate', rawFile(`{"a":${'{"x":'.repeat(depth)}{"d":1,"d":2}${'}'.repeat(depth)}}`, 0)],
      ['unclosed nesting', rawFile('{"a":'.repeat(depth), 0)],
      ['a 20 MB string entry', rawFile(`{"a":"${'x'.repeat(20_000_000)}"}`, 0)],
    ];
    for (const [label, bytes] of cases) assert.equal(parseOrRefuse(bytes, MAX_HUGE_CASE_MS), 'refused', label);
    // 40,000 valid tensors (a ~3 MB header, 10x a large LLM's) parse within the time budget.
    const many = Array.from({ length: 40_000 }, (_, i) => `"layer.${i}.w":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const big = rawFile(`{${many.join(',')}}`, 40_000);
    assert.equal(parseOrRefuse(big, MAX_HUGE_CASE_MS), 'ok');
  });

  it('files that claim huge headers or tensors allocate nothing sized by those claims', async () => {
    const claims = fc.record({
      prefix: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(99_999_999n, 100_000_000n, 2n ** 53n, 2n ** 63n)),
      tensorBytes: fc.constantFrom(2 ** 30, 2 ** 40, 2 ** 52, 90_000_000),
      realData: fc.integer({ min: 0, max: 64 }),
      useRealPrefix: fc.boolean(),
    });
    let worstMs = 0;
    let worstGrowth = 0;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(claims, async ({ prefix, tensorBytes, realData, useRealPrefix }) => {
        const header = `{"big":{"dtype":"U8","shape":[${tensorBytes}],"data_offsets":[0,${tensorBytes}]}}`;
        const bytes = rawFile(header, realData, useRealPrefix ? undefined : prefix);
        const file = dir.file(`claim-${n++}.safetensors`);
        await writeFile(file, bytes);
        const memBefore = process.memoryUsage().arrayBuffers;
        const start = performance.now();
        await assert.rejects(openSafetensors(file), (e: unknown) => e instanceof SafetensorsError);
        worstMs = Math.max(worstMs, performance.now() - start);
        worstGrowth = Math.max(worstGrowth, process.memoryUsage().arrayBuffers - memBefore);
      }),
      { seed: SEED, numRuns: 120 },
    );
    assert.ok(worstMs < MAX_CASE_MS, `slowest open ${worstMs} ms`);
    assert.ok(worstGrowth < 8 * 1024 * 1024, `array buffers grew by ${worstGrowth} bytes`);
  });
});
