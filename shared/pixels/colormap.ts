/**
 * Colour maps as 256-entry RGBA lookup tables. Pure (no DOM): shared by the webviews and by
 * `src/core/heatmapImage.ts`, which writes the demo's PNGs with the same colours.
 */

export type Rgb = readonly [number, number, number];
/** 256 × RGBA, alpha always 255. */
export type ColormapLut = Uint8ClampedArray;
export type ColormapName = 'viridis' | 'diverging';

// Viridis (perceptually uniform, monotonic lightness: readable on light and dark backgrounds),
// sampled at 10 evenly spaced stops and interpolated linearly.
const VIRIDIS_STOPS: readonly Rgb[] = [
  [0x44, 0x01, 0x54], [0x48, 0x27, 0x77], [0x3e, 0x49, 0x89], [0x31, 0x68, 0x8e], [0x26, 0x82, 0x8e],
  [0x1f, 0x9e, 0x89], [0x35, 0xb7, 0x79], [0x6e, 0xce, 0x58], [0xb5, 0xde, 0x2b], [0xfd, 0xe7, 0x25],
];

/** Linear interpolation through evenly spaced colour stops into a 256-entry LUT. */
export function lutFromStops(stops: readonly Rgb[]): ColormapLut {
  const lut = new Uint8ClampedArray(256 * 4);
  const last = stops.length - 1;
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * last;
    const k = Math.min(Math.floor(t), last - 1);
    const f = t - k;
    const a = stops[k];
    const b = stops[k + 1];
    lut[i * 4] = Math.round(a[0] + (b[0] - a[0]) * f);
    lut[i * 4 + 1] = Math.round(a[1] + (b[1] - a[1]) * f);
    lut[i * 4 + 2] = Math.round(a[2] + (b[2] - a[2]) * f);
    lut[i * 4 + 3] = 255;
  }
  return lut;
}

let viridisCache: ColormapLut | undefined;

export function viridis(): ColormapLut {
  viridisCache ??= lutFromStops(VIRIDIS_STOPS);
  return viridisCache;
}

/**
 * Blue → neutral → red for signed data centred on 0. The neutral centre follows the theme
 * (near-white on light, near-black on dark) so that "no similarity" blends into the page.
 */
export function diverging(dark: boolean): ColormapLut {
  const centre: Rgb = dark ? [0x24, 0x24, 0x28] : [0xf4, 0xf4, 0xf4];
  return lutFromStops([[0x21, 0x66, 0xac], [0x67, 0xa9, 0xcf], centre, [0xef, 0x8a, 0x62], [0xb2, 0x18, 0x2b]]);
}

/** Two-colour map (background → foreground) for the 0/1 permutation matrix. */
export function binary(background: Rgb, foreground: Rgb): ColormapLut {
  return lutFromStops([background, foreground]);
}

export function colormap(name: ColormapName, dark: boolean): ColormapLut {
  return name === 'viridis' ? viridis() : diverging(dark);
}

/** Parses `#rgb`, `#rrggbb`, `#rrggbbaa` or `rgb(a)(r, g, b[, a])`; undefined when unrecognised. */
export function parseColor(text: string): Rgb | undefined {
  const s = text.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(s);
  if (m) {
    const h = m[1];
    return [parseInt(h[0] + h[0], 16), parseInt(h[1] + h[1], 16), parseInt(h[2] + h[2], 16)];
  }
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(s);
  if (m) {
    const h = m[1];
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
  }
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(s);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  return undefined;
}

/** Relative luminance in [0, 1] (sRGB weights, no gamma: enough to rank brightness). */
export function luminance(c: Rgb): number {
  return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
}
