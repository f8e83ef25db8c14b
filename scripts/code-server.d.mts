// Types for scripts/code-server.mjs (plain JS so `node scripts/...` runs it without a loader).
import type { ChildProcess } from 'node:child_process';

export declare const CODE_SERVER_VERSION: string;
export declare const NODE24_VERSION: string;

export declare class CodeServerError extends Error {
  readonly kind: 'install' | 'start' | 'platform';
  constructor(kind: 'install' | 'start' | 'platform', message: string);
}

export declare function cacheRoot(): string;
/** The child `npm install`'s environment: `parent` without an outer npm's variables, Node 24 first on PATH. */
export declare function childInstallEnv(parent: NodeJS.ProcessEnv, node24Dir: string | undefined): NodeJS.ProcessEnv;
export declare function codeServerDir(): string;
export declare function codeServerInstalled(): boolean;
export declare function adoptInstalls(from: string): string[];
export declare function ensureNode24(): string;
export declare function ensureCodeServer(): { node: string; entry: string; dir: string };
export declare function isolatedEnv(home: string, extra?: Record<string, string>): NodeJS.ProcessEnv;
export declare const DEFAULT_SETTINGS: Record<string, unknown>;
export declare function freePort(): Promise<number>;

export interface CodeServerOptions {
  workspace?: string;
  smokeTestDriver?: boolean;
  installVsix?: string[];
  quiet?: boolean;
  env?: Record<string, string>;
  port?: number;
  /** User settings merged over DEFAULT_SETTINGS. */
  settings?: Record<string, unknown>;
  /** Keep workspace trust on (default false: `--disable-workspace-trust`, every folder trusted). */
  workspaceTrust?: boolean;
}

export interface CodeServerDirs {
  base: string;
  home: string;
  userData: string;
  extensions: string;
  config: string;
}

export interface RunningCodeServer {
  url: string;
  port: number;
  dirs: CodeServerDirs;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export declare function startCodeServer(opts?: CodeServerOptions): Promise<RunningCodeServer>;
