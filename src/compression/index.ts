export {
  Codec,
  type CodecId,
  type Encoded,
  DEFAULT_ZSTD_LEVEL,
  MIN_SAVINGS,
  encodePayload,
  encodePayloadSync,
  decodePayload,
  decodePayloadSync,
  zstd,
  unzstd,
  zstdFrameLength,
} from './zstd.js';
export { CompressionPolicy, isPrecompressed, isPrecompressedContent } from './detect.js';
