export { Codec, type CodecId, type Encoded, DEFAULT_ZSTD_LEVEL, MIN_SAVINGS, encodePayload, encodePayloadSync, decodePayload, zstd, unzstd } from './zstd.js';
export { isPrecompressed, isPrecompressedContent } from './detect.js';
