/** A histogram drawn as bars on a canvas (the inspector's tensor statistics, the diff view's tensor pictures). */
import { readTheme } from './theme';

export function drawHistogram(canvas: HTMLCanvasElement, counts: readonly number[], color = readTheme().blue): void {
  const theme = readTheme();
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const max = Math.max(1, ...counts);
  const w = width / Math.max(1, counts.length);
  ctx.fillStyle = color;
  counts.forEach((c, i) => {
    const bh = c > 0 ? Math.max(1, (c / max) * (height - 2)) : 0;
    ctx.fillRect(i * w, height - bh, Math.max(1, w - 1), bh);
  });
  ctx.fillStyle = theme.grid;
  ctx.fillRect(0, height - 1, width, 1);
}
