/**
 * The one way a Float32Array travels inside JSON: `{"$f32": "<base64 of little-endian bytes>"}`.
 * Used by the demo report's data blob, the alignment webview's persisted state and the stored
 * panels of the run history. Pure (base64 via the global `btoa`/`atob`, which Node and browsers
 * both have).
 */

const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += CHUNK) s += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(s);
}

export function base64ToBytes(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** JSON.stringify replacer: Float32Array → {$f32: base64}. */
export function typedArrayReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Float32Array) {
    return { $f32: bytesToBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  }
  return value;
}

/** JSON.parse reviver: {$f32: base64} → Float32Array (a payload that is not whole floats throws). */
export function typedArrayReviver(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.$f32 === 'string' && Object.keys(v).length === 1) {
      const bytes = base64ToBytes(v.$f32);
      if (bytes.length % 4 !== 0) throw new SyntaxError('$f32 payload length is not a multiple of 4');
      return new Float32Array(bytes.buffer, 0, bytes.length / 4);
    }
  }
  return value;
}

/** JSON text of `value` with its Float32Arrays as {$f32}. */
export function stringifyWithFloats(value: unknown): string {
  return JSON.stringify(value, typedArrayReplacer);
}

/** Parses what `stringifyWithFloats` wrote. */
export function parseWithFloats(text: string): unknown {
  return JSON.parse(text, typedArrayReviver);
}
