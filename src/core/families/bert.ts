/** BERT (`encoder.layer.N.attention.self.query`, post-LN, optional pooler and masked-LM head). */
import { transformerFamily } from './transformer';

export const bert = transformerFamily('bert', 'Transformer (BERT naming)', ['bert', 'roberta']);
