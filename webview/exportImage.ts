/**
 * A chart as a PNG that reads anywhere: the chart canvas is transparent with theme-coloured
 * text, so it is drawn onto a solid background of the theme's own editor colour, under a title
 * (what is plotted, which models, which data).
 */
import type { ThemeColors } from './theme';

/** A PNG data URL of `source` on a solid `theme.background`, with `lines` above it (the first in bold). */
export function chartPng(source: HTMLCanvasElement, lines: readonly string[], theme: ThemeColors): string {
  // The chart canvas is in device pixels: scale the title the same way.
  const scale = source.clientWidth > 0 ? source.width / source.clientWidth : 1;
  const pad = Math.round(16 * scale);
  const lineHeight = Math.round(20 * scale);
  const out = document.createElement('canvas');
  out.width = source.width + 2 * pad;
  out.height = source.height + 2 * pad + lines.length * lineHeight;
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
  ctx.drawImage(source, pad, pad + lines.length * lineHeight);
  return out.toDataURL('image/png');
}
