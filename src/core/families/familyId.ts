/** The family ids, in a module of their own so the family types (family.ts, lm.ts) share them without a cycle. */
/** Every family, by id: the one union used by spec inference, model configs and forward passes. */
export const FAMILY_IDS = ['mlp', 'vgg', 'resnet', 'resnet-cifar', 'gpt2', 'llama', 'bert'] as const;
export type FamilyId = (typeof FAMILY_IDS)[number];
