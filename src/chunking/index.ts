/**
 * Content-defined chunking (streaming FastCDC). The boundary algorithm is a format: see
 * docs/chunking.md before changing anything that could move a cut point.
 */
export {
  DEFAULT_CHUNKING,
  validateChunkingParams,
  chunkingMasks,
  NORMALIZATION_LEVEL,
  type ChunkingParams,
  type ChunkingMasks,
} from './params.js';
export { defaultGear, gearFromSeed, GEAR_LABEL, GEAR_SEED_BYTES } from './gear.js';
export { Chunker, CutFinder, chunkStream, chunkBuffer, chunkBoundaries } from './fastcdc.js';
