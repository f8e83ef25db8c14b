/**
 * The one name a checkpoint goes by in titles, notifications, cards, prompts, errors and pickers.
 * A Hugging Face folder names its weights `model.safetensors` (or shards with an index), so two
 * models would both read "model.safetensors": inside a model folder the folder is the name.
 *
 *   gpt2-small/model.safetensors                  → gpt2-small
 *   llama/model.safetensors.index.json            → llama (sharded)
 *   llama/model-00001-of-00002.safetensors        → llama (shard 1 of 2)
 *   gpt2-small/model.aligned.safetensors          → gpt2-small/model.aligned.safetensors
 *   models/b.safetensors                          → b.safetensors
 *
 * Pure (paths only, no file system): the CLI, the extension and the webviews' data use it alike.
 */

/** File names `save_pretrained` gives weights: they say nothing about which model it is. */
const GENERIC_STEM = /^(model|pytorch_model|diffusion_pytorch_model|adapter_model|consolidated)(?=[.-])/i;
const SHARD = /^(?:model|pytorch_model|diffusion_pytorch_model)-0*(\d+)-of-0*(\d+)\.safetensors$/i;

function parts(file: string): { folder: string; base: string } {
  const segments = file.split(/[\\/]+/).filter((s) => s !== '');
  const base = segments.at(-1) ?? file;
  const folder = segments.length > 1 ? segments[segments.length - 2] : '';
  return { folder, base };
}

/** The display name of a checkpoint file, shard index or model folder path (see the module comment). */
export function checkpointName(file: string): string {
  const { folder, base } = parts(file);
  if (!folder || !GENERIC_STEM.test(base)) return base;
  if (/^model\.safetensors$/i.test(base)) return folder;
  if (/^model\.safetensors\.index\.json$/i.test(base)) return `${folder} (sharded)`;
  const shard = SHARD.exec(base);
  if (shard) return `${folder} (shard ${Number(shard[1])} of ${Number(shard[2])})`;
  return `${folder}/${base}`;
}

/**
 * Names for two checkpoints shown side by side (A and B of a run): their display names, or, when
 * those are equal (two `a/model.safetensors` in `x/` and `y/`), one more parent folder each.
 */
export function checkpointNamePair(a: string, b: string): readonly [string, string] {
  const na = checkpointName(a);
  const nb = checkpointName(b);
  if (na !== nb) return [na, nb];
  const parent = (file: string): string => {
    const segments = file.split(/[\\/]+/).filter((s) => s !== '');
    const name = checkpointName(file);
    // The folder above the one the name already uses (a name taken from the folder uses two levels).
    const used = name === segments.at(-1) ? 1 : 2;
    const up = segments[segments.length - used - 1];
    return up ? `${up}/${name}` : name;
  };
  return [parent(a), parent(b)];
}
