/**
 * Telling a data file from a model by its tensor names (header only): a `.safetensors` holding
 * only evaluation data (x/y, images/labels), token ids or pixel values, or a model's recorded
 * outputs (`reference_logits.safetensors`: input_ids or pixel_values, and logits) is not a
 * checkpoint, and the pickers do not offer it as one.
 */
import { dataPairNames } from './dataset';

/** Model inputs (tokensArrays.ts reads `input_ids`; vision models take `pixel_values`) and recorded outputs. */
const INPUT_AND_OUTPUT_NAMES = ['input_ids', 'attention_mask', 'token_type_ids', 'pixel_values', 'labels', 'logits'];

const DATA_NAMES = new Set([...dataPairNames(), ...INPUT_AND_OUTPUT_NAMES]);

/** True when every tensor is a data tensor (and there is at least one): a data file, not a model. */
export function isDataFile(tensorNames: readonly string[]): boolean {
  return tensorNames.length > 0 && tensorNames.every((n) => DATA_NAMES.has(n));
}

/** Why a data file is not a checkpoint, in one line. */
export function dataFileProblem(tensorNames: readonly string[]): string {
  return `holds data (${tensorNames.slice(0, 4).join(', ')}${tensorNames.length > 4 ? ', …' : ''}), not a model`;
}
