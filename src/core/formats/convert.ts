/**
 * `rebasin convert`: any checkpoint Re-Basin reads, written as one `.safetensors` file with the
 * same tensor names (as found: see tensorDict.ts), dtypes and layouts, bytes copied as stored.
 */
import * as path from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { writeSafetensors } from '../safetensors/writer';
import { CheckpointFormatError } from './errors';
import { openCheckpoint } from './open';

export interface ConvertResult {
  readonly input: string;
  readonly out: string;
  readonly format: Checkpoint['format'];
  readonly origin?: string;
  readonly tensors: number;
  readonly bytes: number;
}

/** Writes `input`'s tensors to `out` (atomically; never over the input). */
export async function convertToSafetensors(input: string, out: string, signal?: AbortSignal): Promise<ConvertResult> {
  if (!out.toLowerCase().endsWith('.safetensors')) throw new CheckpointFormatError('Unsupported', out, 'the output of convert is a .safetensors file: name it so');
  const ck = await openCheckpoint(input);
  try {
    // The convention of Hugging Face's converters: `format` says which framework the tensors came from.
    const metadata: Record<string, string> = { ...ck.metadata };
    if (ck.format === 'pytorch') metadata.format = 'pt';
    else if (ck.format === 'flax') metadata.format = 'flax';
    metadata['rebasin.converted_from'] = path.basename(input);
    await writeSafetensors(
      out,
      ck.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, read: () => ck.readRaw(t.name) })),
      { metadata, inputs: [input], signal },
    );
    const bytes = ck.tensors.reduce((s, t) => s + t.byteLength, 0);
    return { input, out, format: ck.format, ...(ck.origin ? { origin: ck.origin } : {}), tensors: ck.tensors.length, bytes };
  } finally {
    await ck.close();
  }
}
