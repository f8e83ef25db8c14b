/** BERT forward pass (token ids to hidden states or head outputs) for the equivalence check. */
import { transformerEngineFamily } from './transformer';

export const bert = transformerEngineFamily('bert');
