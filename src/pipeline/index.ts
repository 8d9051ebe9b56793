export { ChunkWorkerPool } from './chunk-pool.js';
export { ChunkStorer, type ChunkStoreSpec, type StoredChunk } from './chunk-storer.js';
