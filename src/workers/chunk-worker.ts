/**
 * A chunk worker thread: stores chunks (their memory transferred, not copied) and restores chunks
 * into open files, with LocalChunks. Replies carry the job id; a failure becomes a message with
 * enough to rebuild the typed error, never a dead thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ObjectCorruptError, ObjectMissingError } from '../errors/index.js';
import { LocalChunks, type ChunkStoreSpec, type Landing } from './local-chunks.js';
import type { ChunkJob, ChunkProgress, ChunkReply } from './chunk-pool.js';
import { periodicCollection } from './worker-memory.js';

const chunks = new LocalChunks(workerData as ChunkStoreSpec);
const port = parentPort!;

const collectNow = periodicCollection();

/**
 * An ingest waits now and then for its chunks to land (fsync, rename), with chunks of its file
 * still views of the read window: jobs that read into that window (ingest, verify) therefore run
 * one after another. Each gives the window up once its file is cut, its reply waiting for the last
 * chunks to land while the next file is cut. Every other job runs the moment it arrives.
 */
let windowTurn: Promise<unknown> = Promise.resolve();

port.on('message', (job: ChunkJob) => {
  if (job.type === 'ingest' || job.type === 'verify') {
    const ran = windowTurn.then(() => runWindowJob(job));
    windowTurn = ran;
    void ran.then((outcome) => replyOnceLanded(job, outcome));
  } else {
    replyOnceLanded(job, run(job));
  }
});

interface Outcome {
  reply: ChunkReply;
  /** The chunks the job stored that are still landing: its reply waits for them. */
  landing: Landing;
}

/** Posts the job's reply once every chunk it stored is in place (at once when there are none). */
function replyOnceLanded(job: ChunkJob, { reply, landing }: Outcome): void {
  const post = (final: ChunkReply): void => {
    port.postMessage(final);
    if (job.type !== 'ingest')
      collectNow(job.type === 'restore' || job.type === 'adoptInto' ? job.size : job.length);
  };
  if (landing.length === 0) return post(reply);
  Promise.all(landing).then(
    () => post(reply),
    (err: unknown) => post(reply.ok ? { id: job.id, ok: false, failure: describe(err) } : reply),
  );
}

/** Jobs that read into the ingest window; never rejects (a failure is a reply). */
async function runWindowJob(
  job: Extract<ChunkJob, { type: 'ingest' | 'verify' }>,
): Promise<Outcome> {
  const landing: Landing = [];
  let reply: ChunkReply;
  try {
    if (job.type === 'verify') {
      const stored = chunks.verifyAt(job.fd, job.position, job.length, job.oid, job.last, landing);
      reply = { id: job.id, ok: true, ...(stored ? { stored } : {}) };
    } else {
      const file = await chunks.ingestFile(
        job.absPath,
        job.relPath,
        (bytes) => {
          port.postMessage({ id: job.id, progress: bytes } satisfies ChunkProgress);
          collectNow(bytes);
        },
        job.previous,
        landing,
      );
      reply = { id: job.id, ok: true, file };
    }
  } catch (err) {
    reply = { id: job.id, ok: false, failure: describe(err) };
  }
  return { reply, landing };
}

/** Every other job, synchronously. */
function run(job: Exclude<ChunkJob, { type: 'ingest' | 'verify' }>): Outcome {
  const landing: Landing = [];
  let reply: ChunkReply;
  try {
    if (job.type === 'store') {
      reply = {
        id: job.id,
        ok: true,
        stored: chunks.store(
          Buffer.from(job.data, 0, job.length),
          job.skipCompression,
          landing,
          true,
          job.oid,
        ),
      };
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
  return { reply, landing };
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
