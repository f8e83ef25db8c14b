/** The flags `rebasin scan` puts on a tensor (rule: src/core/scan/scan.ts, docs/cli.md "scan FILE"). */
export const SCAN_FLAG_NAMES = ['nan', 'inf', 'all-zero', 'constant', 'extreme'] as const;
export type ScanFlag = (typeof SCAN_FLAG_NAMES)[number];
