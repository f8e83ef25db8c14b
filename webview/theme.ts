/**
 * Theme colours read at run time from VS Code's CSS variables (so charts and heatmaps follow
 * the user's theme), and a watcher that re-renders when VS Code switches the body class
 * (`vscode-light` / `vscode-dark` / `vscode-high-contrast[-light]`).
 */
import { parseColor, type Rgb } from '../shared/pixels/colormap';

export type ThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';

export interface ThemeColors {
  readonly kind: ThemeKind;
  readonly dark: boolean;
  readonly foreground: string;
  readonly background: string;
  readonly grid: string;
  readonly blue: string;
  readonly red: string;
  readonly green: string;
  readonly orange: string;
  readonly purple: string;
  readonly backgroundRgb: Rgb;
  readonly accentRgb: Rgb;
  readonly fontFamily: string;
}

export function themeKind(body: HTMLElement = document.body): ThemeKind {
  const c = body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-dark')) return 'dark';
  return 'light';
}

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  const v = style.getPropertyValue(name).trim();
  return v || fallback;
}

/** Reads the current theme's colours (fallbacks match VS Code's default themes). */
export function readTheme(): ThemeColors {
  const kind = themeKind();
  const dark = kind === 'dark' || kind === 'high-contrast';
  const s = getComputedStyle(document.body);
  const foreground = cssVar(s, '--vscode-editor-foreground', dark ? '#cccccc' : '#3b3b3b');
  const background = cssVar(s, '--vscode-editor-background', dark ? '#1f1f1f' : '#ffffff');
  const blue = cssVar(s, '--vscode-charts-blue', dark ? '#3794ff' : '#1a85ff');
  return {
    kind,
    dark,
    foreground,
    background,
    grid: cssVar(s, '--vscode-editorWidget-border', dark ? '#454545' : '#c8c8c8'),
    blue,
    red: cssVar(s, '--vscode-charts-red', dark ? '#f14c4c' : '#e51400'),
    green: cssVar(s, '--vscode-charts-green', dark ? '#89d185' : '#388a34'),
    orange: cssVar(s, '--vscode-charts-orange', dark ? '#d18616' : '#d18616'),
    purple: cssVar(s, '--vscode-charts-purple', dark ? '#b180d7' : '#652d90'),
    backgroundRgb: parseColor(background) ?? (dark ? [0x1f, 0x1f, 0x1f] : [0xff, 0xff, 0xff]),
    accentRgb: parseColor(blue) ?? [0x37, 0x94, 0xff],
    fontFamily: cssVar(s, '--vscode-font-family', 'system-ui, sans-serif'),
  };
}

/** Calls `onChange` whenever the body's theme class changes. Returns a disposer. */
export function watchTheme(onChange: () => void): () => void {
  let last = document.body.className;
  const obs = new MutationObserver(() => {
    if (document.body.className === last) return;
    last = document.body.className;
    onChange();
  });
  obs.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  return () => obs.disconnect();
}

/** Adds an alpha channel to a `#rrggbb` colour (chart fills); other formats are returned unchanged. */
export function withAlpha(color: string, alpha: number): string {
  const rgb = parseColor(color);
  if (!rgb) return color;
  return `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})`;
}
