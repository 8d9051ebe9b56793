import { RETRY_OPTIONS, REQUEST_TIMEOUT_OPTIONS, type OptionTable } from '../options/schema.js';

const MiB = 1024 * 1024;

/** The keys of an `azure://` remote (docs/backends/azure.md). */
export const AZURE_OPTIONS = {
  account_name: { type: 'string', doc: 'Storage account.' },
  account_key: { type: 'string', secret: true, doc: 'Shared key (base64), with account_name.' },
  connection_string: {
    type: 'string',
    secret: true,
    doc: 'A full connection string; not combined with endpoint.',
  },
  use_managed_identity: {
    type: 'boolean',
    default: false,
    doc: 'Authenticate with DefaultAzureCredential (https endpoints only).',
  },
  endpoint: {
    type: 'string',
    doc: 'Blob service URL; default https://<account>.blob.core.windows.net.',
  },
  max_single_shot_size: {
    type: 'integer',
    bytes: true,
    min: 1,
    // Azure's limit for one Put Blob.
    max: 5000 * MiB,
    default: 8 * MiB,
    doc: 'Objects up to this size go up in one Put Blob; larger ones as staged blocks.',
  },
  block_size: {
    type: 'integer',
    bytes: true,
    min: 1,
    // Azure's limit for one staged block.
    max: 4000 * MiB,
    default: 8 * MiB,
    doc: 'Block size of staged uploads.',
  },
  upload_concurrency: {
    type: 'integer',
    min: 1,
    max: 64,
    default: 4,
    doc: 'Blocks of one object uploaded in parallel.',
  },
  has_concurrency: {
    type: 'integer',
    min: 1,
    max: 256,
    default: 16,
    doc: 'HEAD requests in flight within one has() call.',
  },
  list_page_size: {
    type: 'integer',
    min: 1,
    // Azure's maximum.
    max: 5000,
    default: 5000,
    doc: 'Blobs per List Blobs page.',
  },
  ...REQUEST_TIMEOUT_OPTIONS,
  ...RETRY_OPTIONS,
} as const satisfies OptionTable;
