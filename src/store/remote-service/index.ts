/**
 * What the remote-service backends (S3, Azure Blob Storage, Google Cloud Storage, the mediagit
 * server client) share: reading a failed request into the project's errors, Retry-After, and the
 * compare-and-swap of refs over a conditional write.
 */
export * from './failure.js';
export * from './conditional-ref.js';
