export declare function buildIntegration(): Promise<string[]>;
