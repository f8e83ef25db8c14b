/**
 * The one error class of the permutation-spec area. Messages are one line, lowercase,
 * start with the file (or "inferred spec") and name the tensor and the rule broken.
 */

export type SpecErrorKind =
  /** The spec file is not JSON. */
  | 'BadJson'
  /** The JSON is not `{ "axes": { "<tensor>": [perm | null, ...] } }` (or has unknown keys). */
  | 'BadStructure'
  /** The spec names tensors the checkpoint does not hold. */
  | 'MissingTensor'
  /** A spec entry has a different number of axes than the tensor has. */
  | 'RankMismatch'
  /** One permutation acts on axes of different sizes (or a declared size disagrees). */
  | 'SizeConflict'
  /** The two checkpoints disagree on a tensor's shape. */
  | 'ShapeMismatch'
  /** The two checkpoints do not hold the same tensor names. */
  | 'NameMismatch'
  /** Inference recognised the family but could not place some tensors. */
  | 'Unplaceable'
  /** Inference recognised no supported family. */
  | 'UnknownFamily';

export class SpecError extends Error {
  override readonly name = 'SpecError';
  constructor(
    readonly kind: SpecErrorKind,
    message: string,
    /** The spec file or checkpoint the error is about ("inferred spec" for inference). */
    readonly file?: string,
    /** The first tensor concerned, when there is one. */
    readonly tensor?: string,
  ) {
    super(message);
  }
}

/** Where to point users when inference fails: the CLI prints an editable spec. */
export const HAND_WRITTEN_SPEC_HINT =
  'write the spec by hand as {"axes": {"<tensor>": [<permutation name or null>, ...one per axis]}} ' +
  '(start from `rebasin spec FILE` output and edit it) and pass it with `--spec spec.json`';
