/** The tool name and version recorded in the provenance metadata of written checkpoints. */
import pkg from '../../package.json';

export const TOOL = 'rebasin';
export const VERSION: string = pkg.version;
