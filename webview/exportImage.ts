/**
 * A chart as a PNG that reads anywhere: the chart canvas is transparent with theme-coloured
 * text, so it is drawn onto a solid background of the theme's own editor colour, under a title
 * (what is plotted, which models, which data).
 */
import type { ThemeColors } from './theme';

/**
 * A PNG data URL of `source` on a solid `theme.background`, with `lines` above it (the first in
 * bold). `minWidth`: a small pixel map (a heatmap, one pixel a cell) is enlarged by a whole factor
 * to at least this width, cells kept sharp, so the title fits above it.
 */
export function chartPng(source: HTMLCanvasElement, lines: readonly string[], theme: ThemeColors, minWidth = 0): string {
  const enlarge = Math.max(1, Math.ceil(minWidth / Math.max(1, source.width)));
  const width = source.width * enlarge;
  const height = source.height * enlarge;
  // A chart canvas is in device pixels: scale the title the same way.
  const scale = enlarge === 1 && source.clientWidth > 0 ? source.width / source.clientWidth : 1;
  const pad = Math.round(16 * scale);
  const lineHeight = Math.round(20 * scale);
  const out = document.createElement('canvas');
  out.width = width + 2 * pad;
  out.height = height + 2 * pad + lines.length * lineHeight;
  const ctx = out.getContext('2d');
  if (!ctx) return source.toDataURL('image/png');
  ctx.fillStyle = theme.background;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = theme.foreground;
  ctx.textBaseline = 'top';
  lines.forEach((text, i) => {
    ctx.font = `${i === 0 ? 'bold ' : ''}${Math.round((i === 0 ? 15 : 12) * scale)}px ${theme.fontFamily}`;
    ctx.fillText(text, pad, pad + i * lineHeight, out.width - 2 * pad);
  });
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, pad, pad + lines.length * lineHeight, width, height);
  return out.toDataURL('image/png');
}
