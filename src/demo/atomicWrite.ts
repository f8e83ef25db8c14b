/**
 * Writes a demo output atomically: a temp file in the target folder, then rename, so a reader
 * (or a Ctrl-C) never sees a half-written report, image or summary.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
