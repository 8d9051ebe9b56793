import { RETRY_OPTIONS, TIMEOUT_OPTIONS, type OptionTable } from '../options/schema.js';

/** The keys of an `http(s)://` remote (docs/backends/http.md). The token is never one of them. */
export const HTTP_OPTIONS = {
  connections: {
    type: 'integer',
    min: 1,
    max: 1024,
    default: 16,
    doc: 'Keep-alive connections to the server.',
  },
  max_object_bytes: {
    type: 'integer',
    min: 1024 * 1024,
    max: 4 * 1024 * 1024 * 1024,
    default: 64 * 1024 * 1024,
    doc: 'Largest object, or fetched pack, accepted in one answer from the server.',
  },
  ...TIMEOUT_OPTIONS,
  ...RETRY_OPTIONS,
} as const satisfies OptionTable;
