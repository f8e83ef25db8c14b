export { loadDataset, mnistDataDir, type Dataset, type DataSource, type Which } from './dataset';
export { DataError, type DataErrorKind } from './errors';
export { parseIdx } from './idx';
export { parseNpy, type NumericArray } from './npy';
export { readZipEntries } from './zip';
