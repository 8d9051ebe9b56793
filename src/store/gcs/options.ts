import { RETRY_OPTIONS, REQUEST_TIMEOUT_OPTIONS, type OptionTable } from '../options/schema.js';

const MiB = 1024 * 1024;
/** Resumable upload chunks must be whole multiples of this. */
export const GCS_CHUNK_QUANTUM = 256 * 1024;

/** The keys of a `gs://` remote (docs/backends/gcs.md). */
export const GCS_OPTIONS = {
  project: { type: 'string', doc: 'Project ID; saves a lookup where the API needs one.' },
  credentials_path: {
    type: 'string',
    doc: 'A credentials JSON file; without it, Application Default Credentials.',
  },
  endpoint: {
    type: 'string',
    doc: 'API root for emulators and private endpoints (anonymous only on the loopback without credentials_path).',
  },
  resumable_threshold: {
    type: 'integer',
    bytes: true,
    min: 0,
    default: 8 * MiB,
    doc: 'Objects larger than this use a resumable upload; smaller ones one multipart request.',
  },
  chunk_size: {
    type: 'integer',
    bytes: true,
    min: GCS_CHUNK_QUANTUM,
    max: 4096 * MiB,
    multipleOf: GCS_CHUNK_QUANTUM,
    doc: 'Resumable uploads in chunks of this size (a multiple of 256 KiB); default one request.',
  },
  verify_downloads: {
    type: 'boolean',
    default: false,
    doc: 'Check each download against the stored CRC32C.',
  },
  has_concurrency: {
    type: 'integer',
    min: 1,
    max: 256,
    default: 16,
    doc: 'Metadata GETs in flight within one has() call.',
  },
  ...REQUEST_TIMEOUT_OPTIONS,
  ...RETRY_OPTIONS,
} as const satisfies OptionTable;
