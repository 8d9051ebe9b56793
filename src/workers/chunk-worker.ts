/**
 * A chunk worker thread: stores chunks (their memory transferred, not copied) and restores chunks
 * into open files, with LocalChunks. Replies carry the job id; a failure becomes a message with
 * enough to rebuild the typed error, never a dead thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ObjectCorruptError, ObjectMissingError } from '../errors/index.js';
import { LocalChunks, type ChunkStoreSpec } from './local-chunks.js';
import type { ChunkJob, ChunkProgress, ChunkReply } from './chunk-pool.js';
import { periodicCollection } from './worker-memory.js';

const chunks = new LocalChunks(workerData as ChunkStoreSpec);
const port = parentPort!;

const collectNow = periodicCollection();

/**
 * Jobs run one after another: an ingest that waits for its chunks to land must not have another
 * job's reads overwrite the window its chunks are views of. A job's reply, though, waits only for
 * its own chunks' fsyncs (LocalChunks.landed), outside that order: the next job runs meanwhile.
 */
let turn: Promise<unknown> = Promise.resolve();

port.on('message', (job: ChunkJob) => {
  const ran = turn.then(() => run(job));
  turn = ran;
  void ran.then(async ({ reply, landed }) => {
    try {
      await landed;
    } catch (err) {
      if (reply.ok) reply = { id: job.id, ok: false, failure: describe(err) };
    }
    port.postMessage(reply);
    if (job.type !== 'ingest')
      collectNow(job.type === 'restore' || job.type === 'adoptInto' ? job.size : job.length);
  });
});

/** Runs one job; never rejects (a failure is a reply). `landed`: its stored chunks in place. */
async function run(job: ChunkJob): Promise<{ reply: ChunkReply; landed: Promise<void> }> {
  let reply: ChunkReply;
  try {
    if (job.type === 'store') {
      reply = {
        id: job.id,
        ok: true,
        stored: chunks.store(
          Buffer.from(job.data, 0, job.length),
          job.skipCompression,
          true,
          job.oid,
        ),
      };
    } else if (job.type === 'verify') {
      const stored = chunks.verifyAt(job.fd, job.position, job.length, job.oid, job.last);
      reply = { id: job.id, ok: true, ...(stored ? { stored } : {}) };
    } else if (job.type === 'adopt') {
      reply = {
        id: job.id,
        ok: true,
        bytes: chunks.adopt(job.oid, Buffer.from(job.data, 0, job.length)),
      };
    } else if (job.type === 'adoptInto') {
      reply = {
        id: job.id,
        ok: true,
        bytes: chunks.adoptInto(
          job.oid,
          Buffer.from(job.data, 0, job.length),
          job.fd,
          job.position,
          job.size,
          job.keep,
        ),
      };
    } else if (job.type === 'ingest') {
      const file = await chunks.ingestFile(
        job.absPath,
        job.relPath,
        (bytes) => {
          port.postMessage({ id: job.id, progress: bytes } satisfies ChunkProgress);
          collectNow(bytes);
        },
        job.previous,
      );
      reply = { id: job.id, ok: true, file };
    } else {
      reply = {
        id: job.id,
        ok: true,
        bytes: chunks.restoreInto(job.oid, job.fd, job.position, job.size),
      };
    }
  } catch (err) {
    reply = { id: job.id, ok: false, failure: describe(err) };
  }
  return { reply, landed: chunks.landed() };
}

function describe(err: unknown): ChunkFailure {
  if (err instanceof ObjectCorruptError)
    return { kind: 'corrupt', oid: err.oid, message: err.message };
  if (err instanceof ObjectMissingError)
    return { kind: 'missing', oid: err.oid, message: err.message };
  const e = err as NodeJS.ErrnoException;
  return {
    kind: 'error',
    message: e?.message ?? String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}

type ChunkFailure = Extract<ChunkReply, { ok: false }>['failure'];
