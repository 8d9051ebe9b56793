export {
  Codec,
  type CodecId,
  DEFAULT_ZSTD_LEVEL,
  decodePayload,
  decodePayloadSync,
  zstd,
  zstdSync,
  unzstd,
  zstdFrameLength,
} from './zstd.js';
export { isPrecompressed, isPrecompressedContent } from './detect.js';
