import { RETRY_OPTIONS, TIMEOUT_OPTIONS, type OptionTable } from '../options/schema.js';

const MiB = 1024 * 1024;

/** The keys of an `s3://` remote (docs/backends/s3.md). */
export const S3_OPTIONS = {
  region: {
    type: 'string',
    doc: 'Signing region; us-east-1 when endpoint is set, else the SDK chain (AWS_REGION, config files).',
  },
  endpoint: { type: 'string', doc: 'URL of an S3-compatible server; absent means AWS.' },
  force_path_style: {
    type: 'boolean',
    doc: 'http://host/bucket/key addressing; default true when endpoint is set.',
  },
  access_key: { type: 'string', doc: 'Static access key id, with secret_key.' },
  secret_key: { type: 'string', secret: true, doc: 'Static secret key, with access_key.' },
  session_token: { type: 'string', secret: true, doc: 'Session token of temporary credentials.' },
  part_size: {
    type: 'integer',
    bytes: true,
    // S3's own floor for every part but the last.
    min: 5 * MiB,
    default: 100 * MiB,
    doc: 'Objects larger than this go up as a multipart upload in parts of this size.',
  },
  max_concurrent_parts: {
    type: 'integer',
    min: 1,
    max: 1000,
    default: 8,
    doc: 'Parts of one multipart upload in flight; part_size times this is the bytes a push or fetch holds at once.',
  },
  max_concurrent_requests: {
    type: 'integer',
    min: 1,
    max: 1000,
    default: 16,
    doc: 'Requests in flight to the remote (objects moved at once by a push, fetch or clone).',
  },
  probe_cache: {
    type: 'string',
    doc: "File remembering, per endpoint and region (see probe_scope), a passed conditional-write probe for 24 h; '' probes in every process. The CLI sets it to the user's cache folder.",
  },
  probe_scope: {
    type: 'string',
    choices: ['endpoint', 'bucket'],
    doc: "What a remembered probe pass covers: every bucket of the endpoint and region ('endpoint', the default), or only its own bucket ('bucket', for a gateway that routes buckets to different storage software).",
  },
  ...TIMEOUT_OPTIONS,
  ...RETRY_OPTIONS,
} as const satisfies OptionTable;

/** Constructor-only settings for tests; not remote options. */
export const S3_TEST_OPTIONS = {
  conditional_writes: {
    type: 'string',
    choices: ['probe', 'unsupported'],
    doc: "'unsupported' acts as if the conditional-write probe had failed.",
  },
  ref_log_keep: {
    type: 'integer',
    min: 1,
    default: 8,
    doc: 'Newest ref-log entries never pruned.',
  },
  ref_log_grace_ms: {
    type: 'integer',
    min: 0,
    default: 10 * 60_000,
    doc: 'Ref-log entries younger than this are never pruned.',
  },
} as const satisfies OptionTable;
