// Types for scripts/system-deps.mjs (plain JS so scripts/test-all.mjs runs it without a loader).
export interface SystemPackage {
  why: string;
  stages: string[];
  stagesUntilCodeServerInstalled: string[];
  present(env?: NodeJS.ProcessEnv): boolean;
}
export declare const SYSTEM_PACKAGES: Record<string, SystemPackage>;
export declare function packagesFor(stages: readonly string[], state: { codeServerInstalled: boolean }): Map<string, string[]>;
export declare function aptCommand(pkgs: readonly string[], isRoot: boolean): string;
export type SystemPackagePlan =
  | { action: 'none' }
  | { action: 'install'; missing: string[]; line: string }
  | { action: 'stop'; missing: string[]; line: string };
export declare function planSystemPackages(
  needed: Map<string, string[]>,
  machine: { probe: (pkg: string) => boolean; isRoot: boolean; hasApt: boolean },
): SystemPackagePlan;
export declare function runApt(args: string[]): { status: number; output: string };
export declare function installSystemPackages(
  missing: string[],
  deps: { probe: (pkg: string) => boolean; apt?: (args: string[]) => { status: number; output: string } },
): string | null;
export declare function hasAptGet(): boolean;
export declare function probeInstalled(pkg: string): boolean;
