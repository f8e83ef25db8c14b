/** Dense float64 linear algebra for the orthogonal symmetry: SVD and Procrustes. */
export { svd, type Svd } from './svd';
export { householderTo, matMul, procrustes, procrustesFixing } from './procrustes';
