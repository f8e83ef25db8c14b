/**
 * Where `align --symmetry orthogonal` puts the folded reference A' (beside its output) and how a
 * later command finds it again (the output's metadata). No tfjs here: the extension host and the
 * CLI read it (barrier --aligned, merge) without loading the compute engine.
 */

/** Where A' goes for output `out`: beside it, named after it. */
export function referenceFoldedPath(out: string, folder: boolean): string {
  if (folder) return `${out.replace(/[\\/]+$/, '')}.a-folded`;
  return out.toLowerCase().endsWith('.safetensors') ? `${out.slice(0, -'.safetensors'.length)}.a-folded.safetensors` : `${out}.a-folded.safetensors`;
}

/** The folded reference A' an output of `align --symmetry orthogonal` records in its metadata (barrier --aligned and merge evaluate from it). */
export function referenceFoldedIn(metadata: Readonly<Record<string, string>>): string | undefined {
  return metadata['rebasin.align.symmetry'] === 'orthogonal' ? metadata['rebasin.align.referenceFolded'] : undefined;
}
