/**
 * `scan` request: every tensor's statistics and health flags (src/core/scan), read in chunks, with
 * progress in bytes read and a cancellation check per chunk. Nothing is written.
 */
import { formatBytes } from '../../../shared/bytes';
import { EXTREME_ABS, EXTREME_STD_RATIO, scanCheckpoint } from '../../core/scan';
import type { HandlerContext } from '../handlerContext';
import { throwIfCancelled } from '../errors';
import { base, closeAll, openAll } from '../loadTensors';
import type { ScanRequest, ScanResult } from '../protocol';

export async function scanHandler(req: ScanRequest, ctx: HandlerContext): Promise<ScanResult> {
  const started = performance.now();
  const [ck] = await openAll([req.path], { asStored: true });
  try {
    const scan = await scanCheckpoint(ck, {
      beforeChunk: () => throwIfCancelled(ctx.signal, 'scan'),
      onProgress: (done, total, tensor) =>
        ctx.onProgress({
          stage: 'scan',
          fraction: total ? done / total : 1,
          message: `Scanning ${base(req.path)}: ${formatBytes(done)} of ${formatBytes(total)} read (\`${tensor}\`)`,
        }),
    });
    return {
      path: req.path,
      seconds: (performance.now() - started) / 1000,
      ...scan,
      rule: { extremeAbs: EXTREME_ABS, extremeStdRatio: EXTREME_STD_RATIO },
    };
  } finally {
    await closeAll([ck]);
  }
}
