/**
 * Inference for ResNets: torchvision naming (`conv1`, `bn1`, `layerK.M.{conv1,bn1,conv2,bn2,
 * conv3?,bn3?,downsample.0,downsample.1}`, `fc`) and CIFAR ports such as akamaster's
 * ResNet-20 (`layerK.M.{...,shortcut.0?,shortcut.1?}`, `linear`). Cf. Git Re-Basin's
 * `resnet20_permutation_spec` / `resnet50_permutation_spec`.
 *
 * The residual stream is one permutation for every tensor that reads or writes it: the stem
 * starts `P_stem`; identity shortcuts carry it on; a block with a parameterised shortcut
 * (`downsample.0` / `shortcut.0`, conv + BN) starts a new stream `P_layerK` (`P_layerK.M` when
 * not the stage's first block): its shortcut conv maps old -> new stream and its conv1 reads
 * the old one. A block's inner channels get `P_layerK.M.convI` (named after the conv that
 * writes them). The classifier (`fc` / `linear`, or a Sequential head `fc.0`, `fc.3`, ... whose
 * hidden units get `P_fc.0`, ...) reads the last stream after global pooling.
 *
 * Option-A shortcuts (CIFAR ports): no parameters, the shortcut subsamples and zero-pads the
 * channels, so the old stream's channels sit inside the new one at fixed positions. The two
 * streams are then tied and cannot take independent permutations; the choice here is to leave
 * every stream joined by such a shortcut unpermuted (null) while still permuting each block's
 * inner channels, and to say so in the notes.
 */
import { HAND_WRITTEN_SPEC_HINT, SpecError } from './errors';
import { classifyModule, groupModules, layerAxes, normAxes, normSize, type Module } from './modules';
import { formatShape, naturalCompare, type AxesTable, type TensorShape } from './shapes';

export interface ResnetResult {
  readonly family: 'resnet' | 'resnet-cifar';
  readonly axes: AxesTable;
  readonly notes: string[];
}

const SOURCE = 'inferred spec';
const BLOCK_RE = /^layer(\d+)\.(\d+)\.(.+)$/;

/** The name prefix (`''`, `module.`, `model.`...) when the tensors look like a ResNet, else null. */
export function resnetPrefix(tensors: readonly TensorShape[]): string | null {
  for (const t of tensors) {
    const m = /^(.*?)layer\d+\.\d+\.conv1\.weight$/.exec(t.name);
    if (m && t.shape.length === 4) return m[1];
  }
  return null;
}

/** Which ResNet family the tensors are (by inferResnet's rule), or null when they are no ResNet. */
export function resnetKind(tensors: readonly TensorShape[]): 'resnet' | 'resnet-cifar' | null {
  const prefix = resnetPrefix(tensors);
  if (prefix === null) return null;
  try {
    return inferResnet(tensors, prefix).family;
  } catch {
    // Inference will say what it cannot place; detection only needs the name layout.
    return 'resnet';
  }
}

function unplaceable(message: string, tensor?: string): SpecError {
  return new SpecError('Unplaceable', `${SOURCE}: ${message}; ${HAND_WRITTEN_SPEC_HINT}`, SOURCE, tensor);
}

interface Block {
  readonly key: string;
  readonly stage: number;
  readonly index: number;
  readonly modules: Map<string, Module>;
}

function weightOf(m: Module | undefined, what: string): TensorShape {
  const w = m?.params.get('weight');
  if (!m || !w) throw unplaceable(`${what} has no \`weight\``, m ? `${m.name}.weight` : undefined);
  return w;
}

export function inferResnet(tensors: readonly TensorShape[], prefix: string): ResnetResult {
  const misplaced = tensors.filter((t) => !t.name.startsWith(prefix)).map((t) => t.name);
  const rel = tensors.filter((t) => t.name.startsWith(prefix));
  const modules = groupModules(rel.map((t) => ({ name: t.name.slice(prefix.length), shape: t.shape })));
  const full = (m: string): string => prefix + m;

  const blocks = new Map<string, Block>();
  let stemConv: Module | undefined;
  let stemNorm: Module | undefined;
  // The classifier: one Linear (`fc`, `linear`) or a Sequential head (`fc.0`, `fc.1` norm, `fc.3`...).
  const head: Module[] = [];
  for (const m of modules.values()) {
    const b = BLOCK_RE.exec(m.name);
    if (b) {
      const key = `layer${b[1]}.${b[2]}`;
      let block = blocks.get(key);
      if (!block) {
        block = { key, stage: Number(b[1]), index: Number(b[2]), modules: new Map() };
        blocks.set(key, block);
      }
      block.modules.set(b[3], m);
    } else if (m.name === 'conv1' && classifyModule(m) === 'conv') stemConv = m;
    else if (m.name === 'bn1' && classifyModule(m) === 'norm') stemNorm = m;
    else if (/^(fc|linear)(\.\d+)?$/.test(m.name) && (classifyModule(m) === 'linear' || (m.name.includes('.') && classifyModule(m) === 'norm'))) head.push(m);
    else misplaced.push(...[...m.params.values()].map((t) => full(t.name)));
  }
  if (misplaced.length > 0) {
    throw unplaceable(
      `cannot place ${misplaced.slice(0, 6).map((n) => `\`${n}\``).join(', ')}${misplaced.length > 6 ? ` and ${misplaced.length - 6} more` : ''} in a resnet ` +
        '(expected `conv1`, `bn1`, `layerK.M.{convI,bnI,downsample.0/1,shortcut.0/1}`, `fc` or `linear`)',
      misplaced[0],
    );
  }
  if (!stemConv) throw unplaceable(`resnet without a stem conv \`${full('conv1.weight')}\``);

  const axes: AxesTable = {};
  const notes: string[] = [];
  const sizes = new Map<string, number>();
  // Streams joined by parameter-free (padding) shortcuts: union-find over stream names.
  const parent = new Map<string, string>();
  const find = (s: string): string => {
    let r = s;
    for (let up = parent.get(r); up !== undefined && up !== r; up = parent.get(r)) r = up;
    return r;
  };
  const newStream = (name: string, size: number): string => {
    sizes.set(name, size);
    parent.set(name, name);
    return name;
  };
  const padded: string[] = [];

  const stemW = weightOf(stemConv, `stem conv \`${full('conv1')}\``);
  let stream = newStream('P_stem', stemW.shape[0]);
  layerAxes(stemConv, stream, null, axes);
  if (stemNorm) {
    if (normSize(stemNorm) !== stemW.shape[0]) throw unplaceable(`\`${full('bn1.weight')}\` has ${normSize(stemNorm)} channels but \`${full('conv1.weight')}\` gives ${stemW.shape[0]}`, full('bn1.weight'));
    normAxes(stemNorm, stream, axes);
  }

  let usesShortcutNaming = false;
  const ordered = [...blocks.values()].sort((x, y) => x.stage - y.stage || x.index - y.index);
  for (const block of ordered) {
    const convs: { n: number; m: Module }[] = [];
    const norms = new Map<number, Module>();
    let scConv: Module | undefined;
    let scNorm: Module | undefined;
    for (const [local, m] of block.modules) {
      const c = /^conv(\d+)$/.exec(local);
      const n = /^bn(\d+)$/.exec(local);
      if (c && classifyModule(m) === 'conv') convs.push({ n: Number(c[1]), m });
      else if (n && classifyModule(m) === 'norm') norms.set(Number(n[1]), m);
      else if ((local === 'downsample.0' || local === 'shortcut.0') && classifyModule(m) === 'conv') scConv = m;
      else if ((local === 'downsample.1' || local === 'shortcut.1') && classifyModule(m) === 'norm') scNorm = m;
      else {
        const names = [...m.params.values()].map((t) => `\`${full(t.name)}\``);
        throw unplaceable(`cannot place ${names.join(', ')} in resnet block \`${full(block.key)}\``, full([...m.params.values()][0].name));
      }
      if (local.startsWith('shortcut.')) usesShortcutNaming = true;
    }
    convs.sort((x, y) => x.n - y.n);
    if (convs.length < 2 || convs.some((c, i) => c.n !== i + 1)) {
      throw unplaceable(`resnet block \`${full(block.key)}\` should have convs conv1..convN (N >= 2), found ${convs.map((c) => `conv${c.n}`).join(', ') || 'none'}`, full(`${block.key}.conv1.weight`));
    }
    const inCh = weightOf(convs[0].m, 'conv1').shape[1];
    if (inCh !== sizes.get(stream)) {
      throw unplaceable(`\`${full(`${block.key}.conv1.weight`)}\` reads ${inCh} channels but the residual stream before it has ${sizes.get(stream)}`, full(`${block.key}.conv1.weight`));
    }
    const outCh = weightOf(convs[convs.length - 1].m, 'last conv').shape[0];
    const oldStream = stream;
    const streamName = block.index === 0 ? `P_layer${block.stage}` : `P_${block.key}`;
    if (scConv) {
      const w = weightOf(scConv, 'shortcut conv');
      if (w.shape[0] !== outCh || w.shape[1] !== inCh) {
        throw unplaceable(`shortcut conv \`${full(w.name)}\` ${formatShape(w.shape)} should map ${inCh} to ${outCh} channels`, full(w.name));
      }
      stream = newStream(streamName, outCh);
      layerAxes(scConv, stream, oldStream, axes);
      if (scNorm) {
        if (normSize(scNorm) !== outCh) throw unplaceable(`shortcut norm of \`${full(block.key)}\` has ${normSize(scNorm)} channels, expected ${outCh}`, full(`${scNorm.name}.weight`));
        normAxes(scNorm, stream, axes);
      }
    } else if (scNorm) {
      throw unplaceable(`shortcut norm \`${full(scNorm.name)}\` without a shortcut conv`, full(`${scNorm.name}.weight`));
    } else if (inCh !== outCh) {
      // Option-A shortcut: subsample + zero-pad channels; the old stream is tied into the new one.
      stream = newStream(streamName, outCh);
      parent.set(find(stream), find(oldStream));
      padded.push(full(block.key));
    }
    let prevPerm: string = oldStream;
    let prevOut = inCh;
    convs.forEach(({ n, m }, i) => {
      const w = weightOf(m, `conv${n}`);
      if (w.shape[1] !== prevOut) {
        throw unplaceable(`\`${full(w.name)}\` ${formatShape(w.shape)} reads ${w.shape[1]} channels but the conv before it gives ${prevOut}`, full(w.name));
      }
      const perm = i === convs.length - 1 ? stream : newStream(`P_${block.key}.conv${n}`, w.shape[0]);
      layerAxes(m, perm, prevPerm, axes);
      const norm = norms.get(n);
      if (norm) {
        if (normSize(norm) !== w.shape[0]) throw unplaceable(`\`${full(`${norm.name}.weight`)}\` has ${normSize(norm)} channels but \`${full(w.name)}\` gives ${w.shape[0]}`, full(`${norm.name}.weight`));
        normAxes(norm, perm, axes);
        norms.delete(n);
      }
      prevPerm = perm;
      prevOut = w.shape[0];
    });
    for (const norm of norms.values()) throw unplaceable(`norm \`${full(norm.name)}\` has no conv of the same number`, full(`${norm.name}.weight`));
  }

  head.sort((x, y) => naturalCompare(x.name, y.name));
  let headIn: { perm: string | null; size: number | undefined; from: string } = { perm: stream, size: sizes.get(stream), from: 'the last residual stream' };
  const headLayers = head.filter((m) => classifyModule(m) === 'linear');
  for (const m of head) {
    if (classifyModule(m) === 'norm') {
      // A BatchNorm1d in the head follows the Linear before it.
      if (normSize(m) !== headIn.size) throw unplaceable(`norm \`${full(m.name)}\` has ${normSize(m)} channels but ${headIn.from} gives ${headIn.size}`, full(`${m.name}.weight`));
      normAxes(m, headIn.perm, axes);
      continue;
    }
    const w = weightOf(m, 'classifier');
    if (w.shape[1] !== headIn.size) {
      throw unplaceable(`classifier \`${full(w.name)}\` ${formatShape(w.shape)} reads ${w.shape[1]} features but ${headIn.from} has ${headIn.size}`, full(w.name));
    }
    const out = m === headLayers[headLayers.length - 1] ? null : newStream(`P_${m.name}`, w.shape[0]);
    layerAxes(m, out, headIn.perm, axes);
    headIn = { perm: out, size: w.shape[0], from: `\`${full(m.name)}\`` };
  }

  // Streams tied through padding shortcuts are left unpermuted (see the header comment).
  const tied = new Set<string>();
  const members = new Map<string, string[]>();
  for (const s of parent.keys()) members.set(find(s), [...(members.get(find(s)) ?? []), s]);
  for (const group of members.values()) if (group.length > 1) group.forEach((s) => tied.add(s));
  if (tied.size > 0) {
    notes.push(
      `blocks ${padded.map((b) => `\`${b}\``).join(', ')} have parameter-free (option-a) shortcuts that subsample and zero-pad channels: ` +
        `the residual streams ${[...tied].sort(naturalCompare).map((s) => `\`${s}\``).join(', ')} are tied through the padding, so they are left unpermuted; block inner channels are still permuted`,
    );
    for (const [t, entry] of Object.entries(axes)) axes[t] = entry.map((p) => (typeof p === 'string' && tied.has(p) ? null : p));
  }
  const family = usesShortcutNaming || padded.length > 0 || head[0]?.name.startsWith('linear') ? 'resnet-cifar' : 'resnet';
  const out: AxesTable = {};
  for (const [t, entry] of Object.entries(axes)) out[full(t)] = entry;
  return { family, axes: out, notes };
}
