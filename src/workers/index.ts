export { ChunkWorkerPool, defaultPoolSize, type ChunkJobType } from './chunk-pool.js';
export {
  WorkerPool,
  ownedArrayBuffer,
  type Admitted,
  type PoolProgress,
  type PoolReply,
  type WorkerPoolOptions,
} from './pool.js';
export { periodicCollection } from './worker-memory.js';
export {
  ingestAlongPrevious,
  type GuidedIngest,
  type GuidedIngestContext,
} from './guided-ingest.js';
export {
  LocalChunks,
  type ChunkStoreSpec,
  type IngestedFile,
  type Landing,
  type StoredChunk,
} from './local-chunks.js';

/** Worker threads cost ~20 ms to start: worth it once there is this much content to chew through. */
export const WORKERS_WORTH_BYTES = 16 * 1024 * 1024;
