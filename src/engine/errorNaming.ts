/**
 * Every error a request ends with names a file: errors from deeper layers (a tfjs op such as
 * "GatherV2: the index value 70 is not in [0, 63]", a merge's "interpolate: ...") carry no file
 * name of their own, and a user running A and B through one command cannot tell which it is
 * about. Such a message gets the request's files in front; one that names a file already is
 * left as it is.
 */
import * as path from 'node:path';
import { displayName } from '../core/files';
import { EngineError, errorKind } from './errors';
import type { EngineRequest } from './protocol';

/** The files of a request, the one its errors are most often about first. */
function requestFiles(r: EngineRequest): string[] {
  switch (r.kind) {
    case 'align':
      return [r.b, r.a, r.spec, r.model, r.data?.path].filter((p): p is string => p !== undefined);
    case 'merge':
      return [...r.inputs];
    case 'barrier':
    case 'evaluatePath':
      return [r.a, r.b, r.data.path];
    case 'diff':
    case 'diffTensor':
      return [r.b, r.a];
    case 'equivalence':
      return [r.other, r.b];
    case 'tensorStats':
    case 'scan':
      return [r.path];
    case 'train':
      return [r.data.path];
    case 'backend':
      return [];
  }
}

/** Names shown for the files in a message: how our messages name them, and the bare base name. */
function shownNames(file: string): string[] {
  return [displayName(file), path.basename(file)];
}

/** `e` as thrown when its message names one of the request's files, else with them in front. */
export function withFileNamed(e: unknown, request: EngineRequest): unknown {
  const kind = errorKind(e);
  if (kind === 'Cancelled' || !(e instanceof Error)) return e;
  const files = requestFiles(request);
  // A message about the output (a full disk) names it: that is the file it is about.
  const out = 'out' in request && typeof request.out === 'string' ? [request.out] : [];
  if (files.length === 0 || [...files, ...out].some((f) => shownNames(f).some((n) => e.message.includes(n)))) return e;
  const lead = request.kind === 'align' ? displayName(files[0]) : files.slice(0, 3).map(displayName).join(', ');
  const named = new EngineError(kind, `${lead}: ${e.message}`, files[0], { cause: e });
  if (e.stack) named.stack = e.stack;
  return named;
}
