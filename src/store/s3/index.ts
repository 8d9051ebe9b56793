export { S3Store, type S3StoreOptions } from './s3-store.js';
export { ConditionalWritesUnsupportedError, S3BucketNotFoundError, mapS3Error } from './errors.js';
