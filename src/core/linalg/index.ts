/** Dense float64 linear algebra for the orthogonal symmetry: SVD, symmetric eigensolver and Procrustes. */
export { svd, type Svd } from './svd';
export { symmetricEigen, type SymmetricEigen } from './symmetricEigen';
export { gemm, transpose } from './dense';
export { householderTo, matMul, procrustes, procrustesFixing } from './procrustes';
export { procrustesByJacobi } from './procrustesReference';
