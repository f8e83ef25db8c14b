/**
 * The one error class of the data-set readers. `kind` says which rule the file broke;
 * the message is one lowercase line naming the file.
 */
export type DataErrorKind =
  /** The path, or an expected file beside it, does not exist. */
  | 'NotFound'
  /** An IDX/npy/zip file does not start with its format's magic number. */
  | 'BadMagic'
  /** A header or shape is malformed, or images and labels have the wrong rank. */
  | 'BadShape'
  /** Images and labels disagree on the number of examples. */
  | 'CountMismatch'
  /** A label is negative, not an integer, or not below the class count. */
  | 'LabelOutOfRange'
  /** A valid file using a feature we do not read (dtype, Fortran order, compression). */
  | 'Unsupported'
  /** Bytes are missing or a checksum does not match. */
  | 'Corrupt'
  /** A value is NaN or infinite. */
  | 'NonFinite'
  /** Reading the data would hold more than the memory budget. */
  | 'OverBudget';

export class DataError extends Error {
  override readonly name = 'DataError';
  constructor(
    readonly kind: DataErrorKind,
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}
