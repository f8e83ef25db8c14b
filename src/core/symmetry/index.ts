/** The generalized (orthogonal) symmetry of transformers: layout, norm folding, group action. */
export { commutesWithRotary, orthogonalityError, permuteAxis, randomOrthogonal, randomOrthogonalFixing, randomRotaryCommuting, rotateAxis, scaleAxis } from './orthogonal';
export { classifierTransformerLayout, featureAxis, SymmetryUnsupported, transformerLayout, type BlockLayout, type LinearLayer, type NormSite, type TransformerLayout } from './transformerLayout';
export { foldedConfigJson, foldNorms, type FoldedTransformer } from './transformerFold';
export { applyTransformerGroup, randomTransformerGroupElement, type TransformerGroupElement } from './transformerGroup';
export { DEFAULT_SYMMETRY, SYMMETRY_IDS, type SymmetryId } from './settings';
export { MAP_PICTURE_MAX_SIDE, MAP_PICTURES_MAX_CELLS, mapPicture, withPictures, type MapPicture, type OrthogonalMaps } from './mapPictures';
