export {
  S3Store,
  unsignedPayloadSafe,
  type S3StoreOptions,
  type S3StoreTestHooks,
} from './s3-store.js';
export { ConditionalWritesUnsupportedError, S3BucketNotFoundError, mapS3Error } from './errors.js';
export { MAX_PRESIGN_EXPIRY_S, type PresignRequest } from './presign.js';
export { PROBE_MEMORY_FILE } from './probe-memory.js';
