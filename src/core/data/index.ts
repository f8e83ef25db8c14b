export { loadDataset, mnistDataDir, type DataLimits, type Dataset, type DataSource, type Which } from './dataset';
export { DataError, type DataErrorKind } from './errors';
export { parseIdx } from './idx';
export { parseNpy, type NumericArray } from './npy';
export { listZipEntries, readZipEntry, type ZipEntry } from './zip';
export { isTokenArrayPath, isTokenDataPath, loadTokenData, validateTokens, DEFAULT_MAX_SEQ_LEN, type TokenData, type TokenDataOptions, type TokenModelLimits } from './tokens';
export { isTextDataPath } from './text';
export { loadTokenizer, type TextTokenizer } from './textTokenize';
export { maskTokens, MASK_RATE, type MaskedLmBatch, type MaskOptions } from './tokensMask';
