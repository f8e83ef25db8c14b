/** Whole-checkpoint health scan: per-tensor statistics and flags (NaN, Inf, all-zero, constant, extreme). */
export { EXTREME_ABS, EXTREME_STD_RATIO, scanCheckpoint, type CheckpointScan, type DtypeTotal, type ScanFlag, type ScanOptions, type TensorScan } from './scan';
