/**
 * A verification worker thread (see verifier.ts): decodes and hashes uploaded envelopes so the
 * server's event loop never does. The envelope's memory arrives transferred and goes back the
 * same way with the verdict; a refusal comes back as data the pool turns into the same 422.
 */
import { parentPort } from 'node:worker_threads';
import { periodicCollection } from '../workers/index.js';
import { HttpError } from './errors.js';
import { verifyUploadSync } from './verify.js';
import type { VerifyFailure, VerifyJob, VerifyReply } from './verifier.js';

const port = parentPort!;
const collectNow = periodicCollection();

port.on('message', (job: VerifyJob) => {
  const data = Buffer.from(job.data, 0, job.length);
  let reply: VerifyReply;
  try {
    const verified = verifyUploadSync(job.expected, job.oid, data, job.options);
    reply = { id: job.id, ok: true, verified, data: job.data };
  } catch (err) {
    reply = { id: job.id, ok: false, failure: describe(err) };
  }
  port.postMessage(reply, reply.ok ? [job.data] : []);
  collectNow(job.length);
});

function describe(err: unknown): VerifyFailure {
  if (err instanceof HttpError && err.code === 'invalid_object')
    return { kind: 'invalid', oid: String(err.extra['oid'] ?? ''), message: err.message };
  return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
}
