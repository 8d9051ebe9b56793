/**
 * A chunk worker thread: receives chunks (their memory transferred, not copied) and stores each
 * with ChunkStorer. Replies carry the job id; a failure becomes a message, never a dead thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChunkStorer, type ChunkStoreSpec } from './chunk-storer.js';
import type { ChunkJob, ChunkReply } from './chunk-pool.js';

const storer = new ChunkStorer(workerData as ChunkStoreSpec);
const port = parentPort!;

port.on('message', (job: ChunkJob) => {
  let reply: ChunkReply;
  try {
    const stored = storer.store(Buffer.from(job.data, 0, job.length), job.skipCompression);
    reply = { id: job.id, ok: true, stored };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply = { id: job.id, ok: false, message: e?.message ?? String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
  }
  port.postMessage(reply);
});
