import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base64ToBytes, bytesToBase64 } from '../../../shared/float32Json';
import { buildReportHtml, decodeReportData, encodeReportData, escapeInlineScript, type ReportData } from '../../../webview/reportData';

function sample(): ReportData {
  const big = new Float32Array(40_000).map((_, i) => Math.sin(i) * 1e3);
  const backing = new Float32Array([9, 1.5, -2, NaN, Infinity, 7]);
  return {
    title: 'Demo </script><b>x</b>',
    generatedAt: '2026-11-22T18:00:00.000Z',
    alignment: {
      title: 't', a: { name: 'a', path: '/a' }, b: { name: 'b', path: '/b' }, method: 'weight', backend: 'wasm', seconds: 1, iterations: 2,
      objectiveBefore: 1, objectiveAfter: 2, groups: [],
      heatmaps: [{ name: 'P_0', size: 2, perm: [1, 0], before: backing.subarray(1, 5), after: big.subarray(0, 4) }],
    },
    tables: [{ title: 'Results', columns: ['pair', 'barrier'], rows: [['a/b', 0.5], ['a/c', null]] }],
  };
}

test('base64 round-trips every byte value, including chunks above the spread limit', () => {
  const bytes = new Uint8Array(100_000).map((_, i) => (i * 7919) & 0xff);
  assert.deepEqual(base64ToBytes(bytesToBase64(bytes)), bytes);
  assert.equal(bytesToBase64(Uint8Array.from([0xff, 0x00, 0x10])), Buffer.from([0xff, 0x00, 0x10]).toString('base64'));
});

test('encode/decode keeps Float32Array values (views with offsets, NaN, Infinity) exactly', () => {
  const data = sample();
  const back = decodeReportData(encodeReportData(data));
  const h = back.alignment!.heatmaps[0];
  assert.ok(h.before instanceof Float32Array);
  assert.deepEqual([...h.before], [1.5, -2, NaN, Infinity]);
  assert.deepEqual([...h.after], [...data.alignment!.heatmaps[0].after]);
  assert.deepEqual(back.tables, data.tables);
  assert.equal(back.title, data.title);
});

test('encoded text cannot close its script element', () => {
  const text = encodeReportData(sample());
  assert.ok(!text.includes('<'), 'no < in the JSON text');
  assert.equal(escapeInlineScript('a("</script>")+"</SCRIPT"'), 'a("<\\/script>")+"<\\/SCRIPT"');
  const html = buildReportHtml(sample(), { script: 'console.log("</script>")', css: 'body{}' });
  assert.equal(html.match(/<\/script>/g)?.length, 2, 'only the two real closing tags');
  assert.match(html, /<title>Demo &lt;\/script&gt;&lt;b&gt;x&lt;\/b&gt;<\/title>/);
});

test('decode rejects text that is not a report', () => {
  assert.throws(() => decodeReportData('[1,2]'), /expected an object with a string `title`/);
  assert.throws(() => decodeReportData('{"title":"x","v":{"$f32":"AAA="}}'), /multiple of 4/);
  assert.throws(() => decodeReportData('{'), SyntaxError);
});
