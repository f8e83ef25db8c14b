/**
 * Every metadata key reaches the user (issue 10, point 10): a `__proto__` key in a file's
 * `__metadata__` is data, kept by the header parser, the summary and the inspector webview's
 * message validation (where a plain assignment would set a prototype and lose the key).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensorsBytes } from '../../../src/core/safetensors';
import { safeJson, safeText } from '../../../src/core/files';
import { inspectorState } from '../../../webview/validate';

function fileWithMetadata(metaJson: string): Uint8Array {
  let json = Buffer.from(`{"__metadata__":${metaJson},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`);
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return new Uint8Array(Buffer.concat([prefix, json, Buffer.alloc(4)]));
}

describe('metadata keys and safe text', () => {
  it('the header parser keeps a `__proto__` metadata key as an own key', () => {
    const h = parseSafetensorsBytes(fileWithMetadata('{"__proto__":"p","constructor":"c","a":"b"}'));
    assert.deepEqual(Object.keys(h.metadata), ['__proto__', 'constructor', 'a']);
    assert.equal(Object.getOwnPropertyDescriptor(h.metadata, '__proto__')?.value, 'p');
  });

  it('the inspector webview keeps every key of a state message, `__proto__` included', () => {
    const metadata = JSON.parse('{"__proto__":"p","toString":"t","x":"y"}') as Record<string, string>;
    const state = inspectorState({ path: '/m.safetensors', format: 'safetensors', metadata, tensors: [], totalParams: 0, totalBytes: 0 });
    assert.deepEqual(Object.entries(state.metadata), [['__proto__', 'p'], ['toString', 't'], ['x', 'y']]);
  });

  it('safeText escapes C0/C1 controls, DEL and bidi marks, and cuts long text cheaply', () => {
    assert.equal(safeText('a\u001b[2Jb\r\u009b\u202e\u2066\u200f'), 'a\\u001b[2Jb\\u000d\\u009b\\u202e\\u2066\\u200f');
    const long = safeText('x'.repeat(3_000_000), 80);
    assert.equal(long.length, 80);
    assert.ok(long.endsWith('...'));
  });

  it('safeJson escapes what JSON.stringify leaves raw, and parses back to the same value', () => {
    const value = { name: 'a\u202eb\u0085c\u2028', esc: '\u001b' };
    const text = safeJson(JSON.stringify(value));
    assert.doesNotMatch(text, /[\u202e\u0085\u2028\u001b]/);
    assert.deepEqual(JSON.parse(text), value);
  });
});
