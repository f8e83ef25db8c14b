/** Writers of data files for the readers' tests: sparse files, raw safetensors, npy, IDX and zip bytes (pure: no process started). */
import * as fs from 'node:fs';

/** A sparse file of `bytes` (no disk used): only fstat sees its size. */
export function sparseFile(p: string, bytes: number, head: Uint8Array = new Uint8Array(0)): void {
  const fd = fs.openSync(p, 'w');
  if (head.length) fs.writeSync(fd, head, 0, head.length, 0);
  fs.ftruncateSync(fd, bytes);
  fs.closeSync(fd);
}

/** A `.safetensors` file from a raw header (object or JSON text) and data bytes, no validation. */
export function rawSafetensors(p: string, header: object | string, data: Uint8Array = new Uint8Array(0)): void {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(p, Buffer.concat([prefix, json, data]));
}

/** An `.npy` (version 1) file's bytes. */
export function npyBytes(descr: string, shape: readonly number[], data: Uint8Array): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

/** An IDX file's bytes: u8 data of `shape`. */
export function idxHeader(shape: readonly number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * shape.length);
  b[2] = 0x08;
  b[3] = shape.length;
  shape.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
}

export { zipBytes, type ZipEntry } from './zipBytes';

/** `prefix` followed by `zeros` zero bytes, compressed as a stream (never held whole). */
export async function compressedZeros(kind: 'gzip' | 'deflate-raw', prefix: Uint8Array, zeros: number): Promise<Buffer> {
  const zlib = await import('node:zlib');
  const z = kind === 'gzip' ? zlib.createGzip({ level: 9 }) : zlib.createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    z.on('end', resolve);
    z.on('error', reject);
  });
  z.write(prefix);
  const block = Buffer.alloc(1 << 20);
  for (let left = zeros; left > 0; left -= block.length) {
    if (!z.write(left >= block.length ? block : block.subarray(0, left))) await new Promise((r) => z.once('drain', r));
  }
  z.end();
  await done;
  return Buffer.concat(chunks);
}
