/** The family ids, in a module of their own so the family types (family.ts, lm.ts) share them without a cycle. */
/** Every family, by id: the one union used by spec inference, model configs and forward passes. */
export const FAMILY_IDS = ['mlp', 'vgg', 'resnet', 'resnet-cifar', 'gpt2', 'llama', 'mixtral', 'bert', 'vit'] as const;
export type FamilyId = (typeof FAMILY_IDS)[number];

/**
 * A family as the CLI's JSON, spec files and model configs name it (docs/cli.md, a contract): its
 * id, or `transformer`, the name the transformer namings share (CoreFamily.reportedAs says which;
 * their id then travels as `variant`).
 */
export type FamilyName = FamilyId | 'transformer';
