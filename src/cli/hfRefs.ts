/**
 * `hf:org/name[@rev]` arguments: each resolved, before a command runs, to its snapshot folder in
 * the local Hugging Face cache (src/core/hf/cache.ts), which the commands then open like any
 * Hugging Face folder. Offline: a model missing from the cache is one line naming the folder.
 */
import { homedir } from 'node:os';
import { hubCacheDir, isHfRef, resolveHfRef } from '../core/hf/cache';
import type { ParsedArgs } from './args';

export function resolveHfPositionals(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): ParsedArgs {
  if (!args.positionals.some(isHfRef)) return args;
  const hub = hubCacheDir(env, homedir());
  return { ...args, positionals: args.positionals.map((p) => (isHfRef(p) ? resolveHfRef(p, hub).folder : p)) };
}
