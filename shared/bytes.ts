/**
 * Bytes in the user's terms, `3.6 GB`: the one formatter of sizes for messages, progress, the
 * CLI's text and the webviews (decimal units, like `--memory-budget 8GB`).
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes / 1e3;
  let k = 0;
  while (v >= 1e3 && k < units.length - 1) { v /= 1e3; k++; }
  return `${v.toPrecision(v < 10 ? 2 : 3)} ${units[k]}`;
}
